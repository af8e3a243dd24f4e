"""The public surface and the import boundaries STYLE.md asks for."""

from __future__ import annotations

import subprocess
import sys

import kizuna


def test_public_api_is_pinned():
    assert sorted(kizuna.__all__) == ["Kizuna", "__version__", "connect"]
    assert callable(kizuna.connect)


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_domain_pulls_in_no_store_or_web_framework():
    loaded = _modules_after_import("kizuna.domain.records")
    assert not {"sqlalchemy", "fastapi", "starlette", "typer"} & loaded


def test_import_kizuna_is_cheap():
    loaded = _modules_after_import("kizuna")
    assert not {"pandas", "sqlalchemy", "fastapi"} & loaded
