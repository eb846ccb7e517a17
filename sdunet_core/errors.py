"""The one error type of an impossible model or input: `ConfigError(field, reason)`.

It lives in a leaf module so that the config, its plan and its validation can all raise it without importing
each other in a circle.
"""

from __future__ import annotations

# Errors quote at most this much of an offending value: a megabyte-long name must not come back as a megabyte.
QUOTE_CHARS = 80


def quote(value: object) -> str:
    """repr(value), cut to a short prefix."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


class ConfigError(ValueError):
    """An impossible or unsupported UNet configuration or input. `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def __reduce__(self) -> tuple:
        # Picklable with both arguments, so that it crosses from a worker process intact.
        return (type(self), (self.field, self.reason))
