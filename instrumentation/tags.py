"""Attribution tags (`with sl.tags(feature=..., user_id=...)` or `@sl.tags(...)`) for every GenAI span inside.

Tags live in a contextvar (typed values) AND in OTel baggage (string values), so they follow threads that
propagate context, asyncio tasks, and other services through the W3C `baggage` header. Baggage entries use
the attribute keys themselves, so a downstream spanlake-instrumented service writes the same attributes.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Final, TypeVar

from opentelemetry import baggage, context

from . import semconv as sc

F = TypeVar("F", bound=Callable[..., Any])
TagValue = str | int | float | bool

KNOWN_TAGS: Final[Mapping[str, str]] = {
    "feature": sc.SPANLAKE_FEATURE,
    "prompt_name": sc.GEN_AI_PROMPT_NAME,
    "prompt_version": sc.GEN_AI_PROMPT_VERSION,
    "user_id": sc.USER_ID,
    "session_id": sc.SESSION_ID,
    "conversation_id": sc.GEN_AI_CONVERSATION_ID,
}
"""Tag argument -> span attribute (semconv key where one exists); other tags get SPANLAKE_TAG_PREFIX."""

_BAGGAGE_KEYS: Final = frozenset(KNOWN_TAGS.values())

_current: contextvars.ContextVar[Mapping[str, TagValue]] = contextvars.ContextVar(
    "spanlake_tags", default=MappingProxyType({})
)


def attribute_key(tag: str) -> str:
    """The span attribute key of a tag name."""
    return KNOWN_TAGS.get(tag) or sc.SPANLAKE_TAG_PREFIX + tag


def _attributes_of(values: Mapping[str, Any]) -> dict[str, TagValue]:
    out: dict[str, TagValue] = {}
    for tag, value in values.items():
        if value is None:
            continue
        out[attribute_key(tag)] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out


def current_tag_attributes() -> dict[str, TagValue]:
    """Tag attributes in effect now: baggage from upstream services, overridden by local typed tags."""
    result: dict[str, TagValue] = {}
    entries = baggage.get_all()
    if entries:
        for key, value in entries.items():
            if key in _BAGGAGE_KEYS or key.startswith(sc.SPANLAKE_TAG_PREFIX):
                result[key] = str(value)
    local = _current.get()
    if local:
        result.update(local)
    return result


class tags:
    """Context manager and decorator that adds attribution tags to every GenAI span inside.

    Known tags: feature, prompt_name, prompt_version, user_id, session_id, conversation_id; any other
    keyword becomes `spanlake.tag.<key>`. Nested scopes merge, inner values win; None values are ignored.
    """

    def __init__(self, **values: Any) -> None:
        self._attributes = _attributes_of(values)
        self._tokens: list[tuple[contextvars.Token[Mapping[str, TagValue]], object]] = []

    def __enter__(self) -> tags:  # noqa: PYI034
        merged = {**_current.get(), **self._attributes}
        var_token = _current.set(merged)
        ctx = context.get_current()
        for key, value in self._attributes.items():
            ctx = baggage.set_baggage(key, str(value), ctx)
        self._tokens.append((var_token, context.attach(ctx)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        var_token, ctx_token = self._tokens.pop()
        context.detach(ctx_token)  # type: ignore[arg-type]
        _current.reset(var_token)

    def __call__(self, func: F) -> F:
        """Decorate a sync or async function: each call runs inside a fresh scope with these tags."""
        attributes = self._attributes
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _scope(attributes):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _scope(attributes):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _scope(attributes: dict[str, TagValue]) -> tags:
    scope = tags()
    scope._attributes = attributes
    return scope
