"""Public routes, reached from messages without any API token: open pixel, click redirect,
unsubscribe (RFC 8058 one-click) and the preference centre.

The signed token in the path is the only credential. A bad, forged or expired
token gets an HTML page (400, or 404 when the message is gone), never a
redirect. ``GET /u/{token}`` only shows a confirmation form, because mail
scanners fetch every link they find; ``POST /u/{token}`` unsubscribes at once
and answers 200 without a redirect, as RFC 8058 asks. Pages carry
``Cache-Control: no-store`` and a content security policy that allows nothing
but their inline styles and posting back to themselves.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kizuna.api.deps import get_db, public
from kizuna.errors import InvalidInput, NotFound
from kizuna.measurement.actions import (
    PreferenceView,
    UnsubscribeView,
    Visit,
    follow_click,
    preference_view,
    record_open,
    save_preference_form,
    unsubscribe,
    unsubscribe_view,
)
from kizuna.measurement.hosted import CHANNEL_IN_SENTENCE, TEXTS, negotiate_language, render_page
from kizuna.measurement.tracking import LIST_UNSUBSCRIBE_POST
from kizuna.store.database import Database

__all__ = ["PIXEL_GIF", "router"]

# Links in sent messages: each carries a signed token naming its message and recipient.
_SIGNED = public("each link carries a signed token naming its message and recipient")
router = APIRouter(tags=["tracking"], include_in_schema=False, dependencies=[Depends(_SIGNED)])
Db = Annotated[Database, Depends(get_db)]

# A 1×1 transparent GIF89a: header, logical screen, 2-colour table, transparency, image, end.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the token in the address must not travel on
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}
_MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body (the one-click POST may be multipart; its content is not needed)."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES or not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


Form = Annotated[dict[str, list[str]], Depends(_form)]


def _visit(request: Request) -> Visit:
    ip = request.client.host if request.client else None
    return Visit(request.method, ip, request.headers.get("user-agent"))


def _lang(request: Request, form: dict[str, list[str]] | None = None) -> str:
    posted = (form or {}).get("lang", [None])[0]
    return negotiate_language(
        request.query_params.get("lang"),
        posted,
        accept_language=request.headers.get("accept-language"),
    )


def _page(template: str, lang: str, status: int = 200, **context: object) -> HTMLResponse:
    context.setdefault("sender", None)
    context.setdefault("contact", None)
    html = render_page(template, lang, **context)
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _error_page(exc: InvalidInput | NotFound, lang: str) -> HTMLResponse:
    if isinstance(exc, NotFound):
        return _page("error.html", lang, 404, reason="missing")
    reason = "expired" if exc.code == "expired_token" else "invalid"
    return _page("error.html", lang, 400, reason=reason)


@router.api_route("/t/o/{token}.gif", methods=["GET", "HEAD"])
def open_pixel(token: str, request: Request, db: Db) -> Response:
    """The open pixel: a 1×1 GIF that is never cached, so each open reaches us."""
    try:
        record_open(db, token, _visit(request))
    except InvalidInput as exc:
        return _error_page(exc, _lang(request))
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


@router.api_route("/t/c/{token}", methods=["GET", "HEAD"])
def click(token: str, request: Request, db: Db) -> Response:
    """Redirect to the destination signed into the token, recording the click."""
    try:
        url = follow_click(db, token, _visit(request))
    except InvalidInput as exc:
        return _error_page(exc, _lang(request))
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request, db: Db) -> HTMLResponse:
    """The confirmation page; it changes nothing."""
    lang = _lang(request)
    try:
        view = unsubscribe_view(db, token)
    except (InvalidInput, NotFound) as exc:
        return _error_page(exc, lang)
    return _page("unsubscribe.html", lang, view=view, sender=view.sender, contact=view.contact)


@router.post("/u/{token}")
def unsubscribe_now(token: str, request: Request, db: Db, form: Form) -> HTMLResponse:
    """RFC 8058 one-click (and the page's form): opt out at once, answer 200, no redirect."""
    lang = _lang(request, form)
    from_page = form.get("form", [""])[0] == "page"
    method = "unsubscribe page" if from_page else "one-click unsubscribe"

    def wording(view: UnsubscribeView) -> str:
        if not from_page:
            return LIST_UNSUBSCRIBE_POST
        channel = CHANNEL_IN_SENTENCE[lang].get(view.channel, view.channel)
        lead = TEXTS[lang]["unsubscribe_lead"].format(sender=view.sender, channel=channel)
        return f"{lead} [{TEXTS[lang]['unsubscribe_button']}]"

    try:
        view = unsubscribe(db, token, method, wording, _visit(request).ip)
    except (InvalidInput, NotFound) as exc:
        return _error_page(exc, lang)
    return _page("unsubscribe.html", lang, view=view, sender=view.sender, contact=view.contact)


@router.get("/p/{token}")
def preferences_page(token: str, request: Request, db: Db) -> HTMLResponse:
    """The preference centre: channels and topics with their current state."""
    lang = _lang(request)
    try:
        view = preference_view(db, token)
    except (InvalidInput, NotFound) as exc:
        return _error_page(exc, lang)
    return _page("preferences.html", lang, view=view, sender=view.sender, contact=view.contact)


@router.post("/p/{token}")
def preferences_save(token: str, request: Request, db: Db, form: Form) -> HTMLResponse:
    """Save the preference centre's form and show the page again."""
    lang = _lang(request, form)

    def wording(view: PreferenceView) -> str:
        return TEXTS[lang]["consent_wording"].format(sender=view.sender)

    try:
        view = save_preference_form(db, token, form, wording, _visit(request).ip)
    except (InvalidInput, NotFound) as exc:
        return _error_page(exc, lang)
    return _page("preferences.html", lang, view=view, sender=view.sender, contact=view.contact)
