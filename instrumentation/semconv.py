"""The one attribute vocabulary: OpenTelemetry GenAI semantic-convention keys and spanlake's extensions.

Every GenAI attribute key used anywhere in spanlake is a constant here (tests/test_architecture.py
fails on a ``"gen_ai.`` literal elsewhere). The upstream home of these constants is moving between
packages, so keeping our own copy means a move touches one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# --- OTel GenAI semconv 1.37+ (current) -------------------------------------------------------
GEN_AI_PREFIX: Final = "gen_ai."
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"

# Finish reasons: the semconv output-message enum (gen-ai-output-messages.json ``FinishReason``) and
# the provider values that mean the same. Stored ``finish_reasons`` use the enum, so one query covers
# every provider and emitter (OpenLLMetry already maps Anthropic's ``end_turn`` to ``stop``, openlit
# and the anthropic SDK do not). Values without an equivalent (``refusal``, ``pause_turn``) are kept.
FINISH_STOP: Final = "stop"
FINISH_LENGTH: Final = "length"
FINISH_CONTENT_FILTER: Final = "content_filter"
FINISH_TOOL_CALL: Final = "tool_call"
FINISH_ERROR: Final = "error"
PROVIDER_FINISH_REASONS: Final[Mapping[str, str]] = MappingProxyType({
    # OpenAI chat / completions / Responses incomplete_details.reason, Mistral
    "tool_calls": FINISH_TOOL_CALL, "function_call": FINISH_TOOL_CALL, "max_output_tokens": FINISH_LENGTH,
    "model_length": FINISH_LENGTH,
    # Anthropic stop_reason (also Bedrock Converse stopReason, lower-cased)
    "end_turn": FINISH_STOP, "stop_sequence": FINISH_STOP, "max_tokens": FINISH_LENGTH, "tool_use": FINISH_TOOL_CALL,
    "model_context_window_exceeded": FINISH_LENGTH, "guardrail_intervened": FINISH_CONTENT_FILTER,
    "content_filtered": FINISH_CONTENT_FILTER,
    # Gemini / Vertex finishReason, Cohere finish_reason (lower-cased)
    "complete": FINISH_STOP, "safety": FINISH_CONTENT_FILTER,
    "recitation": FINISH_CONTENT_FILTER, "blocklist": FINISH_CONTENT_FILTER,
    "prohibited_content": FINISH_CONTENT_FILTER, "spii": FINISH_CONTENT_FILTER, "tool_call": FINISH_TOOL_CALL,
    "malformed_function_call": FINISH_ERROR,
})
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

# Event / log-record names.
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
EVENT_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
EVENT_FIRST_CHUNK: Final = "gen_ai.first_chunk"

# Metric instrument names.
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

# --- Deprecated / older GenAI keys (semconv <= 1.36) still emitted by many libraries ------------
GEN_AI_SYSTEM: Final = "gen_ai.system"
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"

# --- General OTel keys used by the GenAI mapping ---------------------------------------------
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
SERVICE_NAME: Final = "service.name"
USER_ID: Final = "user.id"
ENDUSER_ID: Final = "enduser.id"
SESSION_ID: Final = "session.id"
DEPLOYMENT_ENVIRONMENT_NAME: Final = "deployment.environment.name"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# --- spanlake extensions: one documented prefix for our own keys -----------------------------
SPANLAKE_PREFIX: Final = "spanlake."
SPANLAKE_FEATURE: Final = "spanlake.feature"
SPANLAKE_TAG_PREFIX: Final = "spanlake.tag."
SPANLAKE_TRUNCATED: Final = "spanlake.truncated"
SPANLAKE_REDACTED: Final = "spanlake.redacted"
"""Set by the collector: what had secrets replaced — attribute keys, or the fields below in parentheses."""
SPANLAKE_REDACTED_MARKER: Final = "[REDACTED:{kind}]"
"""Stands in the stored text where the collector removed a secret (kind: openai-key, authorization, ...)."""
SPANLAKE_REDACTED_NAME: Final = "(name)"
SPANLAKE_REDACTED_STATUS_MESSAGE: Final = "(status_message)"
SPANLAKE_REDACTED_BODY: Final = "(body)"
SPANLAKE_CLOCK_ADJUSTED: Final = "spanlake.clock_adjusted"
"""Set by the collector when span times were unusable and repaired; says what was changed."""
SPANLAKE_VALUE_CLAMPED: Final = "spanlake.value_clamped"
"""Set by the collector when an integer or time was outside what the lake holds (e.g. >= 2^63); says what
was clamped or replaced, and by what."""
SPANLAKE_REJECTED_ATTRIBUTES: Final = "spanlake.rejected_attributes"
"""Keys of attributes the collector dropped for an implausible value (token counts outside 0..10^9, HTTP
status outside 0..999); the span is kept."""
APP_FEATURE: Final = "app.feature"
FEATURE: Final = "feature"

# --- Values and keys added for the instrumentation (issue 4) ---------------------------------
GEN_AI_OPERATION_CHAT: Final = "chat"
GEN_AI_OPERATION_EMBEDDINGS: Final = "embeddings"
GEN_AI_PROVIDER_OPENAI: Final = "openai"
GEN_AI_PROVIDER_ANTHROPIC: Final = "anthropic"
GEN_AI_TOKEN_TYPE_INPUT: Final = "input"
GEN_AI_TOKEN_TYPE_OUTPUT: Final = "output"
GEN_AI_OUTPUT_TYPE_JSON: Final = "json"
GEN_AI_OUTPUT_TYPE_TEXT: Final = "text"
GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
GEN_AI_EVALUATION_USER_FEEDBACK: Final = "user_feedback"
"""`gen_ai.evaluation.name` used by `record_feedback` (end-user thumbs/scores)."""
GEN_AI_INSTRUMENTATION_SCOPE: Final = "spanlake.instrumentation"
SPANLAKE_CONTENT_TRUNCATED_MARKER: Final = "…[spanlake: truncated {dropped} chars]"
"""Appended to a message text cut by the content size cap (the span also gets SPANLAKE_TRUNCATED)."""

# --- Other emitters' keys, read by the collector's GenAI normaliser (issue 3) -------------------
# OTel GenAI keys seen in the wild that the semconv renamed or never had.
GEN_AI_USAGE_TOTAL_TOKENS: Final = "gen_ai.usage.total_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
"""anthropic SDK's name for the semconv ``cache_creation`` count."""
GEN_AI_USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning_tokens"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
GEN_AI_IS_STREAMING: Final = "gen_ai.is_streaming"
GEN_AI_REQUEST_USER: Final = "gen_ai.request.user"
GEN_AI_USER: Final = "gen_ai.user"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: Final = "gen_ai.server.time_to_first_token"
GEN_AI_REQUEST_PREFIX: Final = "gen_ai.request."
GEN_AI_CONTENT_COMPLETION_CHUNK: Final = "gen_ai.content.completion.chunk"
# Content events (semconv <= 1.36) and their body fields.
EVENT_SYSTEM_MESSAGE: Final = "gen_ai.system.message"
EVENT_USER_MESSAGE: Final = "gen_ai.user.message"
EVENT_ASSISTANT_MESSAGE: Final = "gen_ai.assistant.message"
EVENT_TOOL_MESSAGE: Final = "gen_ai.tool.message"
EVENT_CHOICE: Final = "gen_ai.choice"
# General OTel keys.
HTTP_STATUS_CODE_OLD: Final = "http.status_code"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
APP_PREFIX: Final = "app."
# openlit
OPENLIT_SCOPE_PREFIX: Final = "openlit.instrumentation."
OPENLIT_SCOPE: Final = "openlit"
# anthropic SDK's own spans
ANTHROPIC_SDK_SCOPE: Final = "com.anthropic.sdk.python"
ANTHROPIC_MESSAGE_STOP_REASON: Final = "anthropic.message.stop_reason"
# OpenLLMetry (traceloop)
TRACELOOP_SCOPE_PREFIX: Final = "opentelemetry.instrumentation."
TRACELOOP_TRACER_SCOPE: Final = "traceloop.tracer"
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
TRACELOOP_ASSOCIATION_PREFIX: Final = "traceloop.association.properties."
TRACELOOP_ASSOCIATION_USER_ID: Final = "traceloop.association.properties.user_id"
TRACELOOP_ASSOCIATION_SESSION_ID: Final = "traceloop.association.properties.session_id"
TRACELOOP_ASSOCIATION_FEATURE: Final = "traceloop.association.properties.feature"
TRACELOOP_PROMPT_TEMPLATE: Final = "traceloop.prompt.template"
TRACELOOP_PROMPT_VERSION: Final = "traceloop.prompt.version"
TRACELOOP_PROMPT_KEY: Final = "traceloop.prompt.key"
TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"
TRACELOOP_ENTITY_INPUT: Final = "traceloop.entity.input"
TRACELOOP_ENTITY_OUTPUT: Final = "traceloop.entity.output"
TRACELOOP_WORKFLOW_NAME: Final = "traceloop.workflow.name"
# OpenInference
OPENINFERENCE_SCOPE_PREFIX: Final = "openinference.instrumentation."
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_PROJECT_NAME: Final = "openinference.project.name"
LLM_SYSTEM: Final = "llm.system"
LLM_PROVIDER: Final = "llm.provider"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_REQUEST_MODEL_NAME: Final = "llm.request.model_name"
LLM_RESPONSE_MODEL_NAME: Final = "llm.response.model_name"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
LLM_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_REASONING: Final = "llm.token_count.completion_details.reasoning"
LLM_FINISH_REASON: Final = "llm.finish_reason"
LLM_COST_TOTAL: Final = "llm.cost.total"
LLM_PROMPT_TEMPLATE: Final = "llm.prompt_template.template"
LLM_PROMPT_TEMPLATE_VERSION: Final = "llm.prompt_template.version"
LLM_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages."
LLM_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages."
EMBEDDING_PREFIX: Final = "embedding.embeddings."
EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
EMBEDDING_INVOCATION_PARAMETERS: Final = "embedding.invocation_parameters"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"
OI_METADATA: Final = "metadata"
OI_TAG_TAGS: Final = "tag.tags"
OI_FIRST_TOKEN_EVENT: Final = "First Token Stream Event"
# Langfuse
LANGFUSE_SCOPE: Final = "langfuse-sdk"
LANGFUSE_OBSERVATION_TYPE: Final = "langfuse.observation.type"
LANGFUSE_MODEL_NAME: Final = "langfuse.observation.model.name"
LANGFUSE_MODEL_PARAMETERS: Final = "langfuse.observation.model.parameters"
LANGFUSE_USAGE_DETAILS: Final = "langfuse.observation.usage_details"
LANGFUSE_COST_DETAILS: Final = "langfuse.observation.cost_details"
LANGFUSE_COMPLETION_START_TIME: Final = "langfuse.observation.completion_start_time"
LANGFUSE_INPUT: Final = "langfuse.observation.input"
LANGFUSE_OUTPUT: Final = "langfuse.observation.output"
LANGFUSE_LEVEL: Final = "langfuse.observation.level"
LANGFUSE_STATUS_MESSAGE: Final = "langfuse.observation.status_message"
LANGFUSE_PROMPT_NAME: Final = "langfuse.observation.prompt.name"
LANGFUSE_PROMPT_VERSION: Final = "langfuse.observation.prompt.version"
LANGFUSE_OBSERVATION_METADATA_PREFIX: Final = "langfuse.observation.metadata."
LANGFUSE_FINISH_REASON: Final = "langfuse.observation.metadata.finish_reason"
LANGFUSE_TRACE_METADATA_PREFIX: Final = "langfuse.trace.metadata."
LANGFUSE_TRACE_TAGS: Final = "langfuse.trace.tags"
LANGFUSE_TRACE_NAME: Final = "langfuse.trace.name"
LANGFUSE_ENVIRONMENT: Final = "langfuse.environment"
LANGFUSE_RELEASE: Final = "langfuse.release"
LANGFUSE_VERSION: Final = "langfuse.version"
# The tag key named "feature" in other emitters' metadata maps.
FEATURE_TAG: Final = "feature"
