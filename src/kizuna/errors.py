"""The exception tree. Only ``api/`` maps these to HTTP codes, only ``cli/`` to exit codes.

::

    KizunaError
    ├── InvalidInput            a value broke a rule; carries every Problem found
    ├── NotFound                the thing asked for does not exist in this workspace
    ├── Unauthorized            missing or wrong credentials (write key, token)
    ├── Forbidden               the caller is known but may not do this here
    ├── Conflict                the request contradicts stored state
    └── ConfigurationError      the deployment is set up wrongly (key file, URL)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "KizunaError",
    "NotFound",
    "Problem",
    "Unauthorized",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: where (a field path, or a line) and what was wrong."""

    code: str
    message: str
    field: str | None = None
    line: int | None = None

    def describe(self) -> str:
        """One human sentence naming the place and the rule."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class KizunaError(Exception):
    """Base of every error Kizuna raises on purpose."""

    code = "error"


class InvalidInput(KizunaError):
    """Input broke one or more rules; ``problems`` says which and where."""

    code = "invalid_input"

    def __init__(self, problems: list[Problem] | Problem | str, *, code: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(code or self.code, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        if code:
            self.code = code
        elif problems:
            self.code = problems[0].code
        super().__init__("; ".join(p.describe() for p in problems))


class NotFound(KizunaError):
    """The thing asked for does not exist (in this workspace)."""

    code = "not_found"


class Unauthorized(KizunaError):
    """Credentials are missing or wrong."""

    code = "unauthorized"


class Forbidden(KizunaError):
    """The caller is known but may not do this here."""

    code = "forbidden"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class Conflict(KizunaError):
    """The request contradicts what is stored."""

    code = "conflict"


class ConfigurationError(KizunaError):
    """The deployment is configured wrongly."""

    code = "configuration_error"
