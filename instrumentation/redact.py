"""The built-in redactor: removes e-mail addresses, phone numbers, payment card numbers and API keys.

Applied to every captured message text before it is size-capped; apps may pass their own `redactor=`.
"""

from __future__ import annotations

import re
from typing import Final

EMAIL_MARK: Final = "[REDACTED_EMAIL]"
PHONE_MARK: Final = "[REDACTED_PHONE]"
CARD_MARK: Final = "[REDACTED_CARD]"
API_KEY_MARK: Final = "[REDACTED_API_KEY]"

_API_KEY = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r")"
    r"|(?<=Bearer )[A-Za-z0-9._~+/-]{20,}=*"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,}\d(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD_MARK if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group())
    return PHONE_MARK if 9 <= digits <= 15 else match.group()


def default_redactor(text: str) -> str:
    """Replace e-mail addresses, API keys, card numbers (Luhn-checked) and phone numbers with markers."""
    text = _API_KEY.sub(API_KEY_MARK, text)
    text = _EMAIL.sub(EMAIL_MARK, text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)
