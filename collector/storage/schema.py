"""The stored tables' schema: the only place that knows the lake's columns. No I/O here.

Column names are a public interface (users write SQL against them): add columns, never rename.
Bump SCHEMA_VERSION when adding; writers merge new columns into existing Delta tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 2
PARTITION_COLUMN = "dt"
SPANS = "spans"
LOGS = "logs"
METRIC_POINTS = "metric_points"
SPAN_CONTENT = "span_content"
TABLES = (SPANS, LOGS, METRIC_POINTS, SPAN_CONTENT)  # the tables the collector writes
ERASURES = "erasures"  # the erasure log, written by `spanlake erase` only

TS = pa.timestamp("us", tz="UTC")
STR_MAP = pa.map_(pa.string(), pa.string())


@dataclass(frozen=True)
class Column:
    """One stored column: name, Arrow type and what it means (the README table is built from this)."""

    name: str
    type: pa.DataType
    doc: str


EVENT_TYPE = pa.struct([("time_unix_nano", pa.int64()), ("name", pa.string()), ("attributes", STR_MAP)])
LINK_TYPE = pa.struct([("trace_id", pa.string()), ("span_id", pa.string()), ("trace_state", pa.string()),
                       ("attributes", STR_MAP)])
QUANTILE_TYPE = pa.struct([("quantile", pa.float64()), ("value", pa.float64())])

_COMMON_RESOURCE = [
    Column("service_name", pa.string(), "service.name of the resource (with fallbacks for emitters that leave it unknown)"),
    Column("resource_attributes", STR_MAP, "all resource attributes; non-string values JSON-encoded"),
    Column("scope_name", pa.string(), "instrumentation scope name"),
    Column("scope_version", pa.string(), "instrumentation scope version"),
]

SPAN_COLUMNS: tuple[Column, ...] = (
    Column("trace_id", pa.string(), "32 lowercase hex characters"),
    Column("span_id", pa.string(), "16 lowercase hex characters"),
    Column("parent_span_id", pa.string(), "16 lowercase hex characters; NULL for a root span"),
    Column("trace_state", pa.string(), "W3C tracestate"),
    Column("name", pa.string(), "span name"),
    Column("kind", pa.string(), "UNSPECIFIED|INTERNAL|SERVER|CLIENT|PRODUCER|CONSUMER"),
    Column("start_time", TS, "span start, UTC (microseconds; exact value in start_time_unix_nano)"),
    Column("end_time", TS, "span end, UTC"),
    Column("start_time_unix_nano", pa.int64(), "span start as sent (after clock repair), ns since epoch"),
    Column("end_time_unix_nano", pa.int64(), "span end, ns since epoch"),
    Column("duration_ms", pa.float64(), "end - start in milliseconds"),
    Column("status_code", pa.string(), "UNSET|OK|ERROR"),
    Column("status_message", pa.string(), "status description"),
    *_COMMON_RESOURCE,
    Column("attributes", STR_MAP, "all span attributes; strings as sent, other values JSON-encoded"),
    Column("events", pa.list_(EVENT_TYPE), "span events with their attributes"),
    Column("links", pa.list_(LINK_TYPE), "span links"),
    Column("dropped_attributes_count", pa.int64(), "attributes the SDK dropped"),
    Column("flags", pa.int64(), "OTLP span flags"),
    Column("received_time", TS, "when the collector received the span"),
    # Typed GenAI columns (normalised from whichever convention the emitter follows).
    Column("operation", pa.string(), "GenAI operation: chat, embeddings, text_completion, execute_tool, invoke_agent, ..."),
    Column("provider", pa.string(), "GenAI provider (the semconv provider name, or older equivalents)"),
    Column("request_model", pa.string(), "model asked for"),
    Column("response_model", pa.string(), "model that answered"),
    Column("response_id", pa.string(), "provider response id"),
    Column("input_tokens", pa.int64(), "input tokens, inclusive of cached tokens"),
    Column("output_tokens", pa.int64(), "output tokens, inclusive of reasoning tokens"),
    Column("total_tokens", pa.int64(), "input + output tokens"),
    Column("cached_input_tokens", pa.int64(), "input tokens read from the provider's cache"),
    Column("cache_write_tokens", pa.int64(), "input tokens written to the provider's cache"),
    Column("reasoning_tokens", pa.int64(), "reasoning output tokens"),
    Column("ttft_s", pa.float64(), "time to first token/chunk in seconds (streams only)"),
    Column("is_stream", pa.bool_(), "the call was streamed"),
    Column("finish_reasons", pa.list_(pa.string()),
           "finish reasons in the semconv enum (stop, length, content_filter, tool_call, error; others kept, "
           "lower-cased); raw values in attributes"),
    Column("user_id", pa.string(), "end user id"),
    Column("session_id", pa.string(), "session / conversation id"),
    Column("feature", pa.string(), "product feature the call serves (cost attribution tag)"),
    Column("prompt_name", pa.string(), "prompt name"),
    Column("prompt_version", pa.string(), "prompt version"),
    Column("error_type", pa.string(), "normalised error class"),
    Column("cost_usd", pa.float64(), "cost of the call in USD; NULL when unknown"),
    Column("output_chars", pa.int64(), "length of the output text in characters"),
    Column("environment", pa.string(), "deployment.environment.name (or its deprecated forms)"),
    # Added by the GenAI normaliser (issue 3).
    Column("emitter", pa.string(), "which instrumentation emitted the GenAI span: otel-genai, openllmetry, "
           "openlit, openinference, langfuse, anthropic-sdk, spanlake"),
    Column("request_params", STR_MAP, "request parameters the call actually sent (temperature, max_tokens, ...); "
           "values JSON-encoded; known emitter defaults that were never sent are left out"),
    Column("tags", STR_MAP, "other tags/metadata (association properties, Langfuse/OpenInference metadata, tag lists)"),
    Column("prompt_template", pa.string(), "prompt template text"),
    Column("http_status", pa.int32(), "HTTP status of the provider call, where known"),
    Column("ttft_source", pa.string(), "where ttft_s came from: attribute, span_event, iso_timestamp"),
    Column("cost_source", pa.string(), "where cost_usd came from: emitter (reported by the instrumentation) or genai-prices"),
    Column("price_version", pa.string(), "price data version used for cost_usd (e.g. genai-prices==0.2.3, or the emitter)"),
    Column("duplicate_of", pa.string(), "span_id of the span kept for the same LLM call seen by another "
           "instrumentation; filter duplicate_of IS NULL when summing tokens or cost"),
    # Added for issue 12: one absurd value must not drive sums and budgets.
    Column("cost_suspect", pa.bool_(), "cost_usd is above the max_call_cost_usd setting (or negative/not finite): "
           "kept as computed but left out of budgets; NULL where there is no cost (and in rows written before)"),
    Column(PARTITION_COLUMN, pa.date32(), "UTC day of start_time (partition column)"),
)

# Prompt/completion content, one row per span, kept out of `spans` so list and aggregate queries
# never read it. Messages use the OTel GenAI parts shape, JSON-encoded.
SPAN_CONTENT_COLUMNS: tuple[Column, ...] = (
    Column("trace_id", pa.string(), "trace id of the span the content belongs to"),
    Column("span_id", pa.string(), "span id of the span the content belongs to"),
    Column("time", TS, "span start (content from spans) or log record time (content from log records)"),
    Column("service_name", pa.string(), "service.name of the emitting resource (with fallbacks)"),
    Column("input_messages", pa.string(), "JSON [{role, parts:[{type, content, ...}]}] without system messages"),
    Column("output_messages", pa.string(), "JSON [{role, parts, finish_reason}]"),
    Column("system_instructions", pa.string(), "JSON [{type, content}]"),
    Column("source", pa.string(), "span (span attributes) or logs (log records joined by trace and span id)"),
    Column("truncated", pa.bool_(), "a text was cut by the content size cap (marked in the text)"),
    Column(PARTITION_COLUMN, pa.date32(), "UTC day of time (partition column)"),
)

LOG_COLUMNS: tuple[Column, ...] = (
    Column("time", TS, "record time (observed time when the emitter sent none)"),
    Column("time_unix_nano", pa.int64(), "record time as sent, ns (0 when absent)"),
    Column("observed_time_unix_nano", pa.int64(), "observed time as sent, ns"),
    Column("trace_id", pa.string(), "trace id (hex) or NULL"),
    Column("span_id", pa.string(), "span id (hex) or NULL"),
    Column("severity_number", pa.int32(), "OTLP severity number"),
    Column("severity_text", pa.string(), "severity text"),
    Column("event_name", pa.string(), "event name (LogRecord.event_name, or the event.name attribute)"),
    Column("body", pa.string(), "body; strings as sent, structured values JSON-encoded"),
    Column("attributes", STR_MAP, "record attributes; non-string values JSON-encoded"),
    *_COMMON_RESOURCE,
    Column("flags", pa.int64(), "OTLP log record flags"),
    Column("received_time", TS, "when the collector received the record"),
    Column(PARTITION_COLUMN, pa.date32(), "UTC day of time (partition column)"),
)

METRIC_POINT_COLUMNS: tuple[Column, ...] = (
    Column("time", TS, "point time"),
    Column("time_unix_nano", pa.int64(), "point time, ns"),
    Column("start_time_unix_nano", pa.int64(), "start of the aggregation interval, ns"),
    Column("name", pa.string(), "metric name"),
    Column("description", pa.string(), "metric description"),
    Column("unit", pa.string(), "metric unit"),
    Column("type", pa.string(), "gauge|sum|histogram|exponential_histogram|summary"),
    Column("is_monotonic", pa.bool_(), "sums only"),
    Column("aggregation_temporality", pa.string(), "DELTA|CUMULATIVE|UNSPECIFIED"),
    Column("attributes", STR_MAP, "point attributes"),
    *_COMMON_RESOURCE,
    Column("value", pa.float64(), "gauge/sum value"),
    Column("count", pa.int64(), "histogram/summary count"),
    Column("sum", pa.float64(), "histogram/summary sum"),
    Column("min", pa.float64(), "histogram min"),
    Column("max", pa.float64(), "histogram max"),
    Column("bucket_counts", pa.list_(pa.int64()), "histogram bucket counts"),
    Column("explicit_bounds", pa.list_(pa.float64()), "histogram bucket bounds"),
    Column("exp_scale", pa.int32(), "exponential histogram scale"),
    Column("exp_zero_count", pa.int64(), "exponential histogram zero count"),
    Column("exp_positive_offset", pa.int32(), "exponential histogram positive offset"),
    Column("exp_positive_counts", pa.list_(pa.int64()), "exponential histogram positive bucket counts"),
    Column("exp_negative_offset", pa.int32(), "exponential histogram negative offset"),
    Column("exp_negative_counts", pa.list_(pa.int64()), "exponential histogram negative bucket counts"),
    Column("quantiles", pa.list_(QUANTILE_TYPE), "summary quantiles"),
    Column("flags", pa.int64(), "OTLP data point flags"),
    Column("received_time", TS, "when the collector received the point"),
    Column(PARTITION_COLUMN, pa.date32(), "UTC day of time (partition column)"),
)

# One row per `spanlake erase` run: what was asked and how much went, never the erased data itself.
ERASURE_COLUMNS: tuple[Column, ...] = (
    Column("erased_at", TS, "when the erasure committed, UTC"),
    Column("filter_kind", pa.string(), "where (a predicate over spans), user_id or trace_id"),
    Column("filter", pa.string(), "the filter as given (the predicate text, the user ids or the trace ids)"),
    Column("scope", pa.string(), "traces (whole traces of the picked spans) or spans (--spans-only: those spans)"),
    Column("traces", pa.int64(), "traces the picked spans belong to"),
    Column("spans_deleted", pa.int64(), "rows deleted from spans"),
    Column("logs_deleted", pa.int64(), "rows deleted from logs"),
    Column("span_content_deleted", pa.int64(), "rows deleted from span_content"),
    Column("files_vacuumed", pa.int64(), "files deleted from disk by --vacuum-now (0: left to the maintenance "
           "loop's vacuum after vacuum_grace_s)"),
    Column("table_versions", pa.string(), "JSON {table: Delta version} the erasure committed"),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    SPANS: SPAN_COLUMNS,
    LOGS: LOG_COLUMNS,
    METRIC_POINTS: METRIC_POINT_COLUMNS,
    SPAN_CONTENT: SPAN_CONTENT_COLUMNS,
    ERASURES: ERASURE_COLUMNS,
}

# Columns each table is sorted by inside a file, so time-window queries prune row groups.
SORT_COLUMN = {SPANS: "start_time", LOGS: "time", METRIC_POINTS: "time", SPAN_CONTENT: "time"}
# The only columns whose min/max the Delta log records per file (never content, ids or bodies: the
# log outlives erased files).
STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    SPANS: ("start_time", "received_time"), LOGS: ("time", "received_time"),
    METRIC_POINTS: ("time", "received_time"), SPAN_CONTENT: ("time",), ERASURES: ("erased_at",)}
# Partition columns per table (the erasure log is small and unpartitioned).
PARTITIONS: dict[str, list[str]] = {t: [PARTITION_COLUMN] for t in TABLES}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a stored table, with the schema version in its metadata."""
    fields = [pa.field(c.name, c.type) for c in COLUMNS[table]]
    return pa.schema(fields, metadata={b"spanlake.schema_version": str(SCHEMA_VERSION).encode()})


def column_names(table: str) -> list[str]:
    return [c.name for c in COLUMNS[table]]
