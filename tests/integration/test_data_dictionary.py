"""The data dictionary: generated from the schema, complete, and committed without drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from kizuna.cli import app
from kizuna.cli import docs as docs_cli
from kizuna.docs import build_dictionary, to_json, to_markdown, undocumented_personal
from kizuna.docs.dictionary import UNDOCUMENTED
from kizuna.store import tables as core_tables
from kizuna.store.rotation import encrypted_tables
from kizuna.store.tables import metadata

docs_cli.register(app)
runner = CliRunner()
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def test_the_committed_dictionary_is_what_the_schema_generates():
    fresh = to_markdown(build_dictionary()).encode("utf-8")
    regenerate = "kizuna docs data --out docs/data-dictionary.md"
    assert COMMITTED.read_bytes() == fresh, f"the committed dictionary is stale: run `{regenerate}`"


def test_every_table_column_and_key_is_in_the_dictionary():
    documented = {t.name: t for t in build_dictionary().tables}
    assert set(documented) == set(metadata.tables)
    for name, table in metadata.tables.items():
        doc = documented[name]
        assert [c.name for c in doc.columns] == [c.name for c in table.columns]
        keys = {k.name for k in doc.keys}
        assert {str(i.name) for i in table.indexes} <= keys
        uniques = {str(c.name) for c in table.constraints if isinstance(c, sa.UniqueConstraint)}
        assert uniques <= keys
        assert doc.keys[0].kind == "primary key"
        assert doc.keys[0].columns == tuple(c.name for c in table.primary_key.columns)


def test_no_personal_looking_column_is_left_undocumented():
    assert undocumented_personal() == []


def test_the_core_schema_is_fully_documented():
    names = set(core_tables.__all__) - {"metadata"}
    for table in build_dictionary().tables:
        if table.name not in names:
            continue
        assert table.area.key != "other", table.name
        assert UNDOCUMENTED not in (table.meaning, table.updated), table.name
        missing = [c.name for c in table.columns if c.meaning == UNDOCUMENTED]
        assert missing == [], table.name


def test_protection_follows_how_the_column_is_stored():
    tables = {t.name: t for t in build_dictionary().tables}
    customers = {c.name: c for c in tables["customers"].columns}
    assert customers["email_enc"].personal and customers["email_enc"].protection == "encrypted"
    assert customers["email_hash"].personal and customers["email_hash"].protection == "hashed"
    assert customers["prefecture"].personal and customers["prefecture"].protection == "clear"
    assert (
        not customers["membership_rank"].personal
        and customers["membership_rank"].protection is None
    )
    # Every column key rotation re-encrypts is declared encrypted, and nothing else is.
    rotated = {f"{et.name}.{c.name}" for et in encrypted_tables() for c in et.columns}
    encrypted = {f"{t.name}.{c.name}" for t in tables.values() for c in t.columns
                 if c.protection == "encrypted"}  # fmt: skip
    assert rotated == encrypted


def test_what_lacks_documentation_is_marked_and_personal_names_are_caught():
    scratch = sa.MetaData()
    sa.Table("leads", scratch, sa.Column("lead_id", sa.Integer, primary_key=True),
             sa.Column("email", sa.String(320), info={"meaning": "contact address"}),
             sa.Column("source_ip", sa.String(64)), sa.Column("score", sa.Integer))  # fmt: skip
    dictionary = build_dictionary(scratch)
    markdown = to_markdown(dictionary)
    assert f"| [`leads`](#leads) | Other (no area set) | {UNDOCUMENTED} | — |" in markdown
    assert f"| `score` | integer | — | {UNDOCUMENTED} | — | — |" in markdown
    # A meaning is not enough for a personal-looking column: it must say whether it is personal.
    assert undocumented_personal(scratch) == ["leads.email", "leads.source_ip"]


def test_the_json_form_carries_the_same_facts():
    document = json.loads(to_json(build_dictionary()))
    tables = {t["name"]: t for t in document["tables"]}
    assert set(tables) == set(metadata.tables)
    email = next(c for c in tables["customers"]["columns"] if c["name"] == "email_enc")
    assert email["personal"] is True and email["protection"] == "encrypted"
    assert tables["customer_metrics"]["area"] == "analytics"
    assert "KIZUNA_METRICS_REFRESH_HOURS" in tables["customer_metrics"]["updated"]
    assert {s["name"].split(" / ")[0] for s in document["stores"]} >= {"Database", "Current key"}


def test_kizuna_docs_data_prints_and_writes(tmp_path):
    printed = runner.invoke(app, ["docs", "data"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == to_markdown(build_dictionary())
    out = tmp_path / "dictionary.json"
    written = runner.invoke(app, ["docs", "data", "--format", "json", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == to_json(build_dictionary()).encode("utf-8")
    assert runner.invoke(app, ["docs", "data", "--format", "pdf"]).exit_code == 2


def test_every_tables_module_is_part_of_the_schema():
    """A ``store/tables_*.py`` the schema does not import would be missed by docs and rotation."""
    store = Path(core_tables.__file__).parent
    expected = sorted(f"kizuna.store.{p.stem}" for p in store.glob("tables_*.py"))
    probe = ("import sys, kizuna.store.tables; "
             "print('\\n'.join(sorted(m for m in sys.modules "
             "if m.startswith('kizuna.store.tables_'))))")  # fmt: skip
    loaded = subprocess.run(  # a fresh interpreter: nothing imported by other tests
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == expected
