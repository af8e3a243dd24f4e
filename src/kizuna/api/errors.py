"""Maps Kizuna's error tree to HTTP answers: always JSON ``{"code", "message"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kizuna.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    InvalidInput,
    KizunaError,
    NotFound,
    Problem,
    Unauthorized,
)

__all__ = ["error_body", "install_error_handlers"]

_STATUS: dict[type[KizunaError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    ConfigurationError: 500,
}


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, object]:
    """The JSON body of every error answer."""
    body: dict[str, object] = {"code": code, "message": message}
    if problems:
        body["errors"] = [
            {"code": p.code, "message": p.message, "field": p.field, "line": p.line}
            for p in problems
        ]
    return body


def _status_of(exc: KizunaError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 500


def _challenge(request: Request) -> str:
    # Segment's ingestion API authenticates with Basic (write key as user name); the rest
    # of the API with bearer tokens (personal API tokens) or a session cookie.
    path = request.url.path
    return 'Basic realm="kizuna"' if path.startswith("/v1/") else 'Bearer realm="kizuna"'


async def _kizuna_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KizunaError)
    problems = exc.problems if isinstance(exc, InvalidInput) else None
    headers = {"WWW-Authenticate": _challenge(request)} if isinstance(exc, Unauthorized) else None
    return JSONResponse(
        error_body(exc.code, str(exc), problems), status_code=_status_of(exc), headers=headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        Problem(
            "invalid_field",
            str(err.get("msg", "invalid")),
            ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
        )
        for err in exc.errors()
    ]
    message = "; ".join(p.describe() for p in problems)
    return JSONResponse(error_body("invalid_request", message, problems), status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(KizunaError, _kizuna_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
