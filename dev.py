#!/usr/bin/env python3
"""Set up Kizuna in ./.venv from the lock file, then run the demo or the test suite.

    python3 dev.py demo    # a demo shop on the embedded store at http://127.0.0.1:8000/docs
    python3 dev.py test    # lint, type-check and the whole test suite

Needs only Python 3.11+. Set KIZUNA_TEST_DATABASE_URL to run the suite on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".kizuna-installed"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def _check(*args: str | Path) -> None:
    code = _run(*args)
    if code != 0:
        sys.exit(code)


def setup() -> None:
    """Create the virtual environment and install the locked dependencies when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("Kizuna needs Python 3.11 or newer")
    wanted = hashlib.sha256(
        (ROOT / "requirements.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = (BIN / "python", "-m", "pip", "--disable-pip-version-check", "-q")
    _check(*pip, "install", "--require-hashes", "-r", "requirements.lock")
    _check(*pip, "install", "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(wanted)


def demo(args: list[str]) -> int:
    """Serve a demo shop on the embedded store."""
    return _run(BIN / "kizuna", "serve", "--demo", *args)


def test(args: list[str]) -> int:
    """Lint, type-check and run the whole suite (twice in CI: SQLite, then PostgreSQL)."""
    lint = "--no-lint" not in args
    args = [a for a in args if a != "--no-lint"]
    if lint:
        for step in (("ruff", "format", "--check", "."), ("ruff", "check", "."), ("mypy",)):
            code = _run(BIN / step[0], *step[1:])
            if code != 0:
                return code
    backend = "PostgreSQL" if os.environ.get("KIZUNA_TEST_DATABASE_URL") else "SQLite"
    print(f"Running the test suite on {backend}", flush=True)
    workers = os.environ.get("KIZUNA_TEST_WORKERS", "2")
    code = _run(BIN / "python", "-m", "pytest", "-n", workers, *args)
    return 1 if code == 5 else code  # pytest's 5 means no test ran: that is a failure here


def main() -> None:
    """Dispatch ``demo`` or ``test``."""
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        sys.exit(__doc__)
    setup()
    command, rest = sys.argv[1], sys.argv[2:]
    sys.exit(demo(rest) if command == "demo" else test(rest))


if __name__ == "__main__":
    main()
