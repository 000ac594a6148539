"""The one attribute vocabulary: OpenTelemetry GenAI semantic-convention keys and spanlake's extensions.

Every GenAI attribute key used anywhere in spanlake is a constant here (tests/test_architecture.py
fails on a ``"gen_ai.`` literal elsewhere). The upstream home of these constants is moving between
packages, so keeping our own copy means a move touches one file.
"""

from __future__ import annotations

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
