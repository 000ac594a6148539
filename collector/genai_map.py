"""Declarative GenAI mappings: one ``EmitterMap`` per instrumentation, and how to tell them apart.

Each map says, per typed column, which attribute keys hold the value (first present wins) and how
to convert it, plus the emitter's quirks as data (TTFT shapes, parameter defaults it records without
the caller sending them, token semantics). ``collector/normalize.py`` is the engine that applies them.
The sources are read off real payloads: ../shared/research/genai-attribute-map.md, tests/fixtures/README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spanlake.instrumentation import semconv as sc

# --- value converters ----------------------------------------------------------------------------


def to_str(value: Any) -> str | None:
    """A non-empty string (other values JSON-encoded), else None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text or None


_INT64 = range(-(2**63), 2**63)


def to_int(value: Any) -> int | None:
    """An integer that an int64 column holds (beyond that: None, never an overflow), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        return None
    return number if number in _INT64 else None


def to_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def to_str_list(value: Any) -> list[str] | None:
    """A list of strings from a list, a JSON list in a string, or a single string."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.startswith("[") else [value]
        except (json.JSONDecodeError, RecursionError):  # "[" * 5000 is text, not a list
            value = [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


def json_str(value: Any) -> str | None:
    """A JSON-quoted string (Langfuse encodes metadata values, finish reason this way) → the string."""
    if isinstance(value, str) and value.startswith('"'):
        try:
            decoded = json.loads(value)
        except (json.JSONDecodeError, RecursionError):  # "[" * 5000 is text, not a list
            return value
        return to_str(decoded)
    return to_str(value)


def json_str_list(value: Any) -> list[str] | None:
    text = json_str(value)
    return [text] if text is not None else None


def finish_reason(value: Any) -> str | None:
    """A finish/stop reason in the semconv enum (``end_turn`` → ``stop``, ``MAX_TOKENS`` → ``length``);
    a reason with no equivalent is kept, lower-cased. JSON-quoted values (Langfuse) are unquoted."""
    text = json_str(value)
    if not text:
        return None
    lowered = text.lower()
    return sc.PROVIDER_FINISH_REASONS.get(lowered, lowered)


_CLASS_REPR = re.compile(r"^<class '([\w.]+)'>$")
# Provider API error codes (anthropic SDK's error.type) → the SDK exception class others report.
_API_ERROR_CLASSES = {"invalid_request_error": "BadRequestError", "permission_error": "PermissionDeniedError",
                      "api_error": "InternalServerError", "overloaded_error": "OverloadedError"}
# HTTP status → the exception class the openai and anthropic SDKs raise for it (their _make_status_error);
# used when only the SDK's "Error code: 429 - ..." text survived (Langfuse keeps the message, not the class).
_SDK_STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                      404: "NotFoundError", 409: "ConflictError", 422: "UnprocessableEntityError",
                      429: "RateLimitError"}


def sdk_error_class(status: int) -> str | None:
    """The openai/anthropic SDK exception class of an HTTP error status (5xx → InternalServerError)."""
    return "InternalServerError" if status >= 500 else _SDK_STATUS_ERRORS.get(status)


def error_class(value: Any) -> str | None:
    """A normalised error class name: ``<class 'openai.RateLimitError'>``, ``openai.RateLimitError`` and
    ``rate_limit_error`` (an API error code) all become ``RateLimitError``."""
    text = to_str(value)
    if text is None:
        return None
    match = _CLASS_REPR.match(text)
    if match:
        text = match.group(1)
    if " " in text:
        return text
    text = text.rsplit(".", 1)[-1]
    if "_" in text and text.islower():
        return _API_ERROR_CLASSES.get(text) or "".join(p.capitalize() for p in text.split("_"))
    return text


# --- the mapping vocabulary ----------------------------------------------------------------------


@dataclass(frozen=True)
class Src:
    """One place a column's value may be: an attribute key, optionally JSON text with a path inside."""

    key: str
    convert: Callable[[Any], Any]
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmitterMap:
    """Everything the engine needs to read one emitter's spans (see the module docstring)."""

    name: str
    columns: Mapping[str, tuple[Src, ...]]
    operation_values: Mapping[str, str] = field(default_factory=dict)
    # TTFT shapes, tried in order: ("attr", key) seconds; ("event", name) first such span event − start;
    # ("iso", key) a JSON-quoted ISO-8601 timestamp − start.
    ttft: tuple[tuple[str, str], ...] = ()
    stream_absent_means_false: bool = False  # the emitter sets a stream flag/TTFT only on streamed calls
    ttft_implies_stream: bool = True  # False when the emitter stamps a TTFT on every span (openlit)
    params_prefix: str | None = None  # request parameters as individual attributes under this prefix
    params_json: tuple[str, ...] = ()  # ... or as a JSON object in one of these attributes
    params_skip: frozenset[str] = frozenset()
    param_defaults: Mapping[str, Any] = field(default_factory=dict)  # recorded although never sent
    tag_prefixes: tuple[tuple[str, bool], ...] = ()  # (prefix stripped from the tag key, value JSON-encoded)
    tag_json_objects: tuple[str, ...] = ()  # attributes holding a JSON object of tags
    tag_lists: tuple[str, ...] = ()  # attributes holding a list of tags → tags["tags"]
    content: str = "parts"  # content extractor in collector/content.py
    input_excludes_cache_for: frozenset[str] = frozenset()  # providers whose input count omits cache
    provider_from_scope: str | None = None  # scope prefix followed by the provider name
    provider_from_name: tuple[tuple[str, str], ...] = ()  # span-name prefix → provider
    model_is_request_on_error: bool = False  # Langfuse: its only model field is the request model on error
    operation_from_name: bool = False  # span named "{operation} {request model}" (semconv) when attributes lack them


I, F, S, B, L = to_int, to_float, to_str, to_bool, to_str_list

# Tag columns every span may carry (app spans too): where user, session and feature come from.
TAG_COLUMNS: Mapping[str, tuple[Src, ...]] = {
    "user_id": (Src(sc.USER_ID, S), Src(sc.ENDUSER_ID, S), Src(sc.TRACELOOP_ASSOCIATION_USER_ID, S),
                Src(sc.GEN_AI_REQUEST_USER, S), Src(sc.GEN_AI_USER, S)),
    "session_id": (Src(sc.SESSION_ID, S), Src(sc.GEN_AI_CONVERSATION_ID, S),
                   Src(sc.TRACELOOP_ASSOCIATION_SESSION_ID, S)),
    "feature": (Src(sc.SPANLAKE_FEATURE, S), Src(sc.APP_FEATURE, S), Src(sc.FEATURE, S),
                Src(sc.TRACELOOP_ASSOCIATION_FEATURE, S)),
}
# Keys whose values land in typed columns, so they are not repeated in `tags`.
TAG_KEYS_IN_COLUMNS = frozenset({sc.APP_FEATURE, sc.FEATURE_TAG, sc.SPANLAKE_FEATURE, "user_id", "session_id"})
APP_TAGS: tuple[tuple[str, bool], ...] = ((sc.APP_PREFIX, False),)

_OTEL_COLUMNS: dict[str, tuple[Src, ...]] = {
    **TAG_COLUMNS,
    "operation": (Src(sc.GEN_AI_OPERATION_NAME, S),),
    "provider": (Src(sc.GEN_AI_PROVIDER_NAME, S), Src(sc.GEN_AI_SYSTEM, S)),
    "request_model": (Src(sc.GEN_AI_REQUEST_MODEL, S),),
    "response_model": (Src(sc.GEN_AI_RESPONSE_MODEL, S),),
    "response_id": (Src(sc.GEN_AI_RESPONSE_ID, S),),
    "input_tokens": (Src(sc.GEN_AI_USAGE_INPUT_TOKENS, I), Src(sc.GEN_AI_USAGE_PROMPT_TOKENS, I)),
    "output_tokens": (Src(sc.GEN_AI_USAGE_OUTPUT_TOKENS, I), Src(sc.GEN_AI_USAGE_COMPLETION_TOKENS, I)),
    "total_tokens": (Src(sc.GEN_AI_USAGE_TOTAL_TOKENS, I),),
    "cached_input_tokens": (Src(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, I),),
    "cache_write_tokens": (Src(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, I),
                           Src(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, I)),
    "reasoning_tokens": (Src(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, I), Src(sc.GEN_AI_USAGE_REASONING_TOKENS, I)),
    "is_stream": (Src(sc.GEN_AI_REQUEST_STREAM, B), Src(sc.GEN_AI_IS_STREAMING, B)),
    "finish_reasons": (Src(sc.GEN_AI_RESPONSE_FINISH_REASONS, L), Src(sc.ANTHROPIC_MESSAGE_STOP_REASON, L)),
    "prompt_name": (Src(sc.GEN_AI_PROMPT_NAME, S),),
    "prompt_version": (Src(sc.GEN_AI_PROMPT_VERSION, S),),
    "error_type": (Src(sc.ERROR_TYPE, error_class),),
    "cost_usd": (Src(sc.GEN_AI_USAGE_COST, F),),
}
_OTEL_PARAMS_SKIP = frozenset({sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_REQUEST_STREAM, sc.GEN_AI_REQUEST_USER})

OTEL = EmitterMap(
    name="otel-genai", columns=_OTEL_COLUMNS,
    ttft=(("attr", sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK),),
    params_prefix=sc.GEN_AI_REQUEST_PREFIX, params_skip=_OTEL_PARAMS_SKIP, tag_prefixes=APP_TAGS,
)
SPANLAKE = EmitterMap(
    name="spanlake", columns=_OTEL_COLUMNS, ttft=OTEL.ttft, params_prefix=sc.GEN_AI_REQUEST_PREFIX,
    params_skip=_OTEL_PARAMS_SKIP, tag_prefixes=((sc.SPANLAKE_TAG_PREFIX, False), *APP_TAGS),
)
ANTHROPIC_SDK = EmitterMap(
    name="anthropic-sdk", columns=_OTEL_COLUMNS, ttft=OTEL.ttft, stream_absent_means_false=True,
    params_prefix=sc.GEN_AI_REQUEST_PREFIX, params_skip=_OTEL_PARAMS_SKIP, tag_prefixes=APP_TAGS,
)
OPENLLMETRY = EmitterMap(
    name="openllmetry",
    columns={**_OTEL_COLUMNS,
             "operation": (Src(sc.GEN_AI_OPERATION_NAME, S), Src(sc.TRACELOOP_SPAN_KIND, S)),
             "prompt_name": (Src(sc.TRACELOOP_PROMPT_KEY, S),),
             "prompt_version": (Src(sc.TRACELOOP_PROMPT_VERSION, S),),
             "prompt_template": (Src(sc.TRACELOOP_PROMPT_TEMPLATE, S),)},
    operation_values={"workflow": "invoke_workflow", "agent": "invoke_agent", "tool": "execute_tool",
                      "task": "task"},
    # No stream_absent_means_false: its Anthropic spans omit gen_ai.is_streaming on non-streamed calls,
    # but in events mode also on streamed ones (fixture otel-anthropic-events), so absent = unknown.
    ttft=(("event", sc.GEN_AI_CONTENT_COMPLETION_CHUNK),),
    params_prefix=sc.GEN_AI_REQUEST_PREFIX, params_skip=_OTEL_PARAMS_SKIP,
    tag_prefixes=((sc.TRACELOOP_ASSOCIATION_PREFIX, False), *APP_TAGS), content="traceloop",
)
OPENLIT = EmitterMap(
    name="openlit",
    columns={**_OTEL_COLUMNS, "total_tokens": (Src(sc.METRIC_TOKEN_USAGE, I),)},
    # openlit stamps TTFT on every span; on non-streamed calls it is the whole latency, so it is only
    # read when the span says stream=true (the engine drops TTFT on non-streams).
    ttft=(("attr", sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN),), ttft_implies_stream=False,
    params_prefix=sc.GEN_AI_REQUEST_PREFIX,
    params_skip=_OTEL_PARAMS_SKIP | {sc.GEN_AI_REQUEST_ENCODING_FORMATS},
    # openlit records these whether or not the caller sent them (fixtures: seed 0, top_p 1.0 on a call
    # that sent 0.9, temperature 1.0, top_k 1.0, stop_sequences []): a value equal to the default is
    # indistinguishable from "not sent", so it is left out of request_params.
    param_defaults={sc.GEN_AI_REQUEST_TEMPERATURE: 1.0, sc.GEN_AI_REQUEST_TOP_P: 1.0, sc.GEN_AI_REQUEST_SEED: 0,
                    sc.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.0, sc.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.0,
                    sc.GEN_AI_REQUEST_TOP_K: 1.0, sc.GEN_AI_REQUEST_STOP_SEQUENCES: [],
                    sc.GEN_AI_REQUEST_MAX_TOKENS: -1},
    tag_prefixes=APP_TAGS,
    input_excludes_cache_for=frozenset({sc.GEN_AI_PROVIDER_ANTHROPIC}),
    provider_from_scope=sc.OPENLIT_SCOPE_PREFIX,
    operation_from_name=True,  # its Anthropic 429 span has no attributes at all, only the semconv name
)

_OI_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings", "CHAIN": "invoke_workflow", "AGENT": "invoke_agent",
             "TOOL": "execute_tool", "RETRIEVER": "retrieval", "RERANKER": "rerank"}
OPENINFERENCE = EmitterMap(
    name="openinference",
    columns={
        **TAG_COLUMNS,
        "operation": (Src(sc.OPENINFERENCE_SPAN_KIND, S),),
        "provider": (Src(sc.LLM_PROVIDER, S), Src(sc.LLM_SYSTEM, S)),
        "request_model": (Src(sc.LLM_REQUEST_MODEL_NAME, S), Src(sc.LLM_INVOCATION_PARAMETERS, S, ("model",)),
                          Src(sc.EMBEDDING_INVOCATION_PARAMETERS, S, ("model",))),
        "response_model": (Src(sc.LLM_RESPONSE_MODEL_NAME, S), Src(sc.LLM_MODEL_NAME, S),
                           Src(sc.EMBEDDING_MODEL_NAME, S)),
        # OpenInference has the response id only inside the raw response JSON.
        "response_id": (Src(sc.OUTPUT_VALUE, S, ("id",)),),
        "input_tokens": (Src(sc.LLM_TOKEN_COUNT_PROMPT, I),),
        "output_tokens": (Src(sc.LLM_TOKEN_COUNT_COMPLETION, I),),
        "total_tokens": (Src(sc.LLM_TOKEN_COUNT_TOTAL, I),),
        "cached_input_tokens": (Src(sc.LLM_TOKEN_COUNT_CACHE_READ, I),),
        "cache_write_tokens": (Src(sc.LLM_TOKEN_COUNT_CACHE_WRITE, I),),
        "reasoning_tokens": (Src(sc.LLM_TOKEN_COUNT_REASONING, I),),
        "is_stream": (Src(sc.LLM_INVOCATION_PARAMETERS, B, ("stream",)),),
        "finish_reasons": (Src(sc.LLM_FINISH_REASON, L),),
        "prompt_version": (Src(sc.LLM_PROMPT_TEMPLATE_VERSION, S),),
        "prompt_template": (Src(sc.LLM_PROMPT_TEMPLATE, S),),
        "error_type": (Src(sc.ERROR_TYPE, error_class),),
        "cost_usd": (Src(sc.LLM_COST_TOTAL, F),),
    },
    operation_values=_OI_KINDS,
    ttft=(("event", sc.OI_FIRST_TOKEN_EVENT),), stream_absent_means_false=True,
    params_json=(sc.LLM_INVOCATION_PARAMETERS, sc.EMBEDDING_INVOCATION_PARAMETERS),
    params_skip=frozenset({"model", "stream", "messages", "input"}),
    tag_prefixes=APP_TAGS, tag_json_objects=(sc.OI_METADATA,), tag_lists=(sc.OI_TAG_TAGS,),
    content="openinference",
)

_LF_TYPES = {"generation": "chat", "embedding": "embeddings", "agent": "invoke_agent", "tool": "execute_tool",
             "chain": "invoke_workflow", "retriever": "retrieval"}
LANGFUSE = EmitterMap(
    name="langfuse",
    columns={
        **TAG_COLUMNS,
        "operation": (Src(sc.LANGFUSE_OBSERVATION_TYPE, S),),
        "response_model": (Src(sc.LANGFUSE_MODEL_NAME, S),),
        "input_tokens": (Src(sc.LANGFUSE_USAGE_DETAILS, I, ("prompt_tokens",)),
                         Src(sc.LANGFUSE_USAGE_DETAILS, I, ("input",))),
        "output_tokens": (Src(sc.LANGFUSE_USAGE_DETAILS, I, ("completion_tokens",)),
                          Src(sc.LANGFUSE_USAGE_DETAILS, I, ("output",))),
        "total_tokens": (Src(sc.LANGFUSE_USAGE_DETAILS, I, ("total_tokens",)),
                         Src(sc.LANGFUSE_USAGE_DETAILS, I, ("total",))),
        "cached_input_tokens": (Src(sc.LANGFUSE_USAGE_DETAILS, I, ("prompt_tokens_details", "cached_tokens")),),
        "reasoning_tokens": (Src(sc.LANGFUSE_USAGE_DETAILS, I, ("completion_tokens_details", "reasoning_tokens")),),
        "finish_reasons": (Src(sc.LANGFUSE_FINISH_REASON, json_str_list),),
        "prompt_name": (Src(sc.LANGFUSE_PROMPT_NAME, S),),
        "prompt_version": (Src(sc.LANGFUSE_PROMPT_VERSION, S),),
        "cost_usd": (Src(sc.LANGFUSE_COST_DETAILS, F, ("total",)),),
        "feature": (*TAG_COLUMNS["feature"], Src(sc.LANGFUSE_OBSERVATION_METADATA_PREFIX + sc.FEATURE_TAG, json_str),
                    Src(sc.LANGFUSE_TRACE_METADATA_PREFIX + sc.FEATURE_TAG, json_str)),
    },
    operation_values=_LF_TYPES,
    ttft=(("iso", sc.LANGFUSE_COMPLETION_START_TIME),), stream_absent_means_false=True,
    params_json=(sc.LANGFUSE_MODEL_PARAMETERS,),
    params_skip=frozenset({"service_tier"}),
    # Langfuse fills the OpenAI defaults in (temperature 1, top_p 1 on a call that sent 0.9, max_tokens
    # "Infinity"): values equal to these are left out, as for openlit.
    param_defaults={"temperature": 1, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0,
                    "max_tokens": "Infinity"},
    tag_prefixes=((sc.LANGFUSE_OBSERVATION_METADATA_PREFIX, True), (sc.LANGFUSE_TRACE_METADATA_PREFIX, True),
                  *APP_TAGS),
    tag_lists=(sc.LANGFUSE_TRACE_TAGS,),
    content="langfuse",
    provider_from_name=(("OpenAI-", sc.GEN_AI_PROVIDER_OPENAI), ("Anthropic-", sc.GEN_AI_PROVIDER_ANTHROPIC)),
    model_is_request_on_error=True,
)
# Plain (non-GenAI) spans: only the tag columns, so app spans still carry user / session / feature.
PLAIN = EmitterMap(name="", columns=TAG_COLUMNS, tag_prefixes=((sc.SPANLAKE_TAG_PREFIX, False), *APP_TAGS),
                   content="")

# Extra tags, single keys → tag name.
EXTRA_TAG_KEYS: Mapping[str, str] = {
    sc.LANGFUSE_TRACE_NAME: "trace_name", sc.LANGFUSE_VERSION: "version",
    sc.TRACELOOP_WORKFLOW_NAME: "workflow", sc.GEN_AI_WORKFLOW_NAME: "workflow", sc.GEN_AI_AGENT_NAME: "agent",
}

# --- detection -----------------------------------------------------------------------------------

_BY_SCOPE: dict[str, EmitterMap] = {
    sc.ANTHROPIC_SDK_SCOPE: ANTHROPIC_SDK, sc.LANGFUSE_SCOPE: LANGFUSE, sc.TRACELOOP_TRACER_SCOPE: OPENLLMETRY,
    sc.OPENLIT_SCOPE: OPENLIT, sc.GEN_AI_INSTRUMENTATION_SCOPE: SPANLAKE,
}
_BY_SCOPE_PREFIX: tuple[tuple[str, EmitterMap], ...] = (
    (sc.OPENLIT_SCOPE_PREFIX, OPENLIT), (sc.OPENINFERENCE_SCOPE_PREFIX, OPENINFERENCE),
    ("opentelemetry.instrumentation.genai.", OTEL), ("opentelemetry.util.genai", OTEL),
    ("opentelemetry.instrumentation.openai_v2", OTEL), ("opentelemetry.instrumentation.google_genai", OTEL),
)
# OpenLLMetry's instrumentors share the contrib scope prefix; these libraries are theirs.
_OPENLLMETRY_LIBS = frozenset({
    "openai.v1", "openai.v0", "anthropic", "bedrock", "cohere", "mistralai", "ollama", "groq", "together",
    "replicate", "watsonx", "alephalpha", "transformers", "sagemaker", "crewai", "haystack", "llamaindex",
    "langchain", "pinecone", "chromadb", "qdrant", "weaviate", "milvus", "lancedb", "marqo", "mcp",
    "vertexai", "google_generativeai", "openai_agents", "writer",
})
# Key presence for spans whose scope says nothing (app code using a library's tagging API).
BY_KEY: tuple[tuple[str, EmitterMap], ...] = (
    (sc.OPENINFERENCE_SPAN_KIND, OPENINFERENCE), (sc.LANGFUSE_OBSERVATION_TYPE, LANGFUSE),
    (sc.TRACELOOP_SPAN_KIND, OPENLLMETRY),
)


def emitter_for_scope(scope_name: str | None) -> EmitterMap | None:
    """The emitter a scope name identifies, or None when its spans must be looked at one by one."""
    if not scope_name:
        return None
    found = _BY_SCOPE.get(scope_name)
    if found is not None:
        return found
    for prefix, emitter in _BY_SCOPE_PREFIX:
        if scope_name.startswith(prefix):
            return emitter
    if scope_name.startswith(sc.TRACELOOP_SCOPE_PREFIX):
        lib = scope_name[len(sc.TRACELOOP_SCOPE_PREFIX):]
        if lib in _OPENLLMETRY_LIBS:
            return OPENLLMETRY
    return None


def emitter_for_span(attrs: Mapping[str, Any]) -> EmitterMap:
    """The emitter of a span from an unrecognised scope, by the keys it carries (PLAIN when none)."""
    for key, emitter in BY_KEY:
        if key in attrs:
            return emitter
    if sc.GEN_AI_OPERATION_NAME in attrs or sc.GEN_AI_PROVIDER_NAME in attrs or sc.GEN_AI_SYSTEM in attrs \
            or sc.GEN_AI_REQUEST_MODEL in attrs or any(k.startswith(sc.GEN_AI_PREFIX) for k in attrs):
        return OTEL
    return PLAIN


ALL_EMITTERS = (OTEL, SPANLAKE, ANTHROPIC_SDK, OPENLLMETRY, OPENLIT, OPENINFERENCE, LANGFUSE)
