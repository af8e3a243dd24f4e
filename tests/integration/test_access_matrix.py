"""The role matrix: every route of the app, called by every role, answers as it declares.

The route list comes from the app itself (``route_table``), so a route added
without a declaration fails here. For each route and each caller — no
credentials, a write key, the operator token, an account per role (with and
without personal data in clear), and an administrator of another workspace — the
answer must be 401 / 403 exactly when the declaration says so, and anything else
(200, 400, 404 …) when it allows the call; a public route answers every caller
alike. Workspace routes are also called on a workspace the caller has no role in
and on one that does not exist: both 403, so names cannot be probed. Routes that
can show personal data in clear are called again asking for it.
"""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from kizuna.api import build_app
from kizuna.api.deps import RouteAccess, RouteEntry, framework_paths, route_table
from kizuna.security.permissions import PERSONAL_DATA
from tests.integration.access_people import OPERATOR_TOKEN, Person, make_people, write_key

_APP = build_app(None, OPERATOR_TOKEN)  # type: ignore[arg-type]  # only its routes are read
_ROUTES = [(e, m) for e in route_table(_APP) for m in sorted(e.methods)]
ALLOWED = "allowed"
# Routes that check personal data in clear once their body is read: a body that gets there.
REVEAL_BODIES = {
    ("POST", "/api/workspaces/{workspace}/templates/preview"): {
        "template": {}, "customer": "C1", "reveal": True,
    },
    ("POST", "/api/workspaces/{workspace}/privacy/disclose"): {"ref": "C1"},  # always in clear
    ("POST", "/api/workspaces/{workspace}/privacy/retention/report"): {"reveal": True},
}  # fmt: skip


def _fill(path: str, workspace: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "workspace":
            return workspace
        if name.endswith("_id"):
            return str(uuid.uuid4())
        return "1" if name == "version" else "x"

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def _outcome(status: int) -> str | int:
    return status if status in (401, 403) else ALLOWED


def _expected(access: RouteAccess, who: Person | None, *, member: bool = True) -> str | int:
    """What the declaration promises ``who`` (None: no credentials or a write key)."""
    if access.kind == "public":
        return ALLOWED
    if who is None:
        return 401
    if access.kind == "write_key":
        return 401  # accounts and the operator cannot ingest
    if access.kind == "authenticated":
        return ALLOWED
    if access.kind == "user":
        return 403 if who.name == "operator" else ALLOWED
    if who.name != "operator" and not member:
        return 403
    return ALLOWED if access.permission in who.permissions else 403


@pytest.fixture
def world(db, workspace):
    people = make_people(db)
    key = write_key(db)
    with TestClient(build_app(db, OPERATOR_TOKEN), raise_server_exceptions=False) as client:
        yield client, people, key


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _ids(item: tuple[RouteEntry, str]) -> str:
    return f"{item[1]} {item[0].path}"


def test_every_route_declares_its_access_once():
    framework = framework_paths(_APP)
    for entry, method in _ROUTES:
        if not entry.api:
            assert entry.path in framework, f"{method} {entry.path} is not an API route"
            continue
        assert len(entry.access) == 1, f"{method} {entry.path} declares {entry.access}"
        access = entry.access[0]
        if "reveal" in entry.query:
            assert access.reveal == "query", f"{method} {entry.path} must declare reveal"
        if "reveal" in entry.body:
            assert access.reveal == "body", f"{method} {entry.path} must declare reveal"
        if access.reveal == "body":
            assert (method, entry.path) in REVEAL_BODIES, f"add {entry.path} to REVEAL_BODIES"
        if access.kind == "permission":
            assert "{workspace}" in entry.path, f"{entry.path}: a permission needs a workspace"


@pytest.mark.parametrize("item", _ROUTES, ids=_ids)
def test_route_answers_every_caller_as_declared(world, item):
    client, people, key = world
    entry, method = item
    if not entry.api:
        assert client.request(method, entry.path).status_code == 200  # docs are public
        return
    (access,) = entry.access
    url = _fill(entry.path, "shop")
    seen: dict[str, str | int] = {}
    wrong: list[str] = []

    def call(name: str, headers: dict[str, str], want: str | int, **kw: object) -> None:
        if access.kind == "write_key":
            kw.setdefault("json", {})  # an empty body is refused before any key is looked at
        status = client.request(method, kw.pop("url", url), headers=headers, **kw).status_code
        seen[name] = status
        # A public route's answer is its own business (a bad signature may well be 403);
        # credentials just must not change it (checked below).
        if access.kind != "public" and _outcome(status) != want:
            wrong.append(f"{name}: answered {status}, declared {want}")

    call("no credentials", {}, _expected(access, None))
    call("write key as bearer", _bearer(key), _expected(access, None))
    call("write key", _basic(key), ALLOWED if access.kind == "write_key" else
         _expected(access, None))  # fmt: skip
    for person in people.values():
        member = person.name != "outsider"
        call(person.name, _bearer(person.token), _expected(access, person, member=member))
    if access.kind == "permission":
        _wrong_workspaces(call, entry, people)
    if access.reveal is not None:
        _reveals(call, entry, method, url, access, people)
    if access.kind == "public":
        assert len(set(seen.values())) == 1 and 401 not in seen.values(), seen
    assert not wrong, f"{method} {entry.path} ({access}):\n" + "\n".join(wrong)


def _wrong_workspaces(call, entry: RouteEntry, people: dict[str, Person]) -> None:
    for slug in ("other", "no-such-workspace"):
        for person in people.values():
            if person.name == "operator" or (person.name == "outsider" and slug == "other"):
                continue
            call(f"{person.name} in {slug}", _bearer(person.token), 403,
                 url=_fill(entry.path, slug))  # fmt: skip


def _reveals(call, entry, method, url, access, people) -> None:
    for person in people.values():
        plain = _expected(access, person, member=person.name != "outsider")
        want = plain if plain != ALLOWED else (
            ALLOWED if PERSONAL_DATA in person.permissions else 403)  # fmt: skip
        if access.reveal == "query":
            call(f"{person.name} revealing", _bearer(person.token), want, url=url + "?reveal=true")
        else:
            body = REVEAL_BODIES[(method, entry.path)]
            call(f"{person.name} revealing", _bearer(person.token), want, json=body)


def test_a_route_without_a_declaration_is_caught():
    app = build_app(None, OPERATOR_TOKEN)  # type: ignore[arg-type]

    @app.get("/api/workspaces/{workspace}/forgotten")
    def forgotten(workspace: str) -> dict[str, str]:
        return {"workspace": workspace}

    (entry,) = [e for e in route_table(app) if e.path.endswith("/forgotten")]
    assert entry.api and entry.access == ()
