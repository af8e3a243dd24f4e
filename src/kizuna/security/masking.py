"""Masking of personal values for people who may not see them in clear.

``t***@example.com``, ``090-****-5678`` (E.164 ``+8190…`` is shown in national
form first), ``山田 *``. Everything else personal becomes ``***``.
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = ["mask_email", "mask_name", "mask_phone", "mask_trait", "mask_traits"]

_JP_MOBILE = re.compile(r"\+81[789]0\d{8}")


def mask_email(value: str) -> str:
    """Keep the first letter of the local part and the domain."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(value: str) -> str:
    """Keep the first and last four digits of the national form."""
    if _JP_MOBILE.fullmatch(value):
        # Stored Japanese mobiles (+8170/80/90 + 8 digits) group 3-4-4; skip the full parse,
        # which dominates masked exports of large segments.
        return f"0{value[3:5]}-****-{value[-4:]}"
    try:
        national = phonenumbers.format_number(
            phonenumbers.parse(value, "JP"), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    except phonenumbers.NumberParseException:
        national = value
    digits = [c for c in national if c.isdigit()]
    if len(digits) < 8:
        return "***"
    parts = national.split("-")
    if len(parts) == 3:
        return f"{parts[0]}-{'*' * len(parts[1])}-{parts[2]}"
    return national[:3] + "****" + national[-4:]


def mask_name(value: str) -> str:
    """Keep the family name's first part, hide the rest (``山田 *``)."""
    head = value.split()[0] if " " in value.strip() else value[:1]
    return f"{head} *"


def mask_trait(name: str, value: str | None) -> str | None:
    """Mask a personal trait by its name; ``None`` stays ``None``."""
    if value is None:
        return None
    if name == "email":
        return mask_email(value)
    if name == "phone":
        return mask_phone(value)
    if name in ("last_name", "last_name_kana"):
        return mask_name(value)
    return "***"


def mask_traits(traits: dict[str, object], personal: frozenset[str]) -> dict[str, object]:
    """A copy of ``traits`` with every name in ``personal`` masked."""
    return {
        name: mask_trait(name, str(value)) if name in personal and value is not None else value
        for name, value in traits.items()
    }
