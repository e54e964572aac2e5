"""Reading the schema's newest revision without Alembic (streams/store/revision.py), against Alembic's own reading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from streams.store import migrate
from streams.store.revision import head_revision
from tests.unit.store.databases import migrated_engine

ROOT = Path(__file__).resolve().parents[3]


def write_revision(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        f'"""{name}."""\n\nimport sqlalchemy as sa\n\nrevision: str = "{revision}"\ndown_revision = {down}\n'
        "branch_labels = None\n\n\ndef upgrade() -> None:\n    revision = 'not this one'\n"
    )


def test_the_project_s_head_is_alembic_s() -> None:
    assert head_revision() == ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


@pytest.mark.parametrize(
    ("revisions", "head"),
    [
        ([("b_second", "bbb", '"aaa"'), ("a_first", "aaa", "None"), ("c_third", "ccc", '"bbb"')], "ccc"),
        ([("a", "aaa", "None"), ("b", "bbb", '"aaa"'), ("c", "ccc", '"aaa"'), ("d", "ddd", '("bbb", "ccc")')], "ddd"),
    ],
    ids=["a chain, files out of order", "a merge revision that revises two"],
)
def test_the_head_is_the_revision_no_other_revises(
    tmp_path: Path, revisions: list[tuple[str, str, str]], head: str
) -> None:
    for name, revision, down in revisions:
        write_revision(tmp_path, name, revision, down)
    assert head_revision(tmp_path) == head


def test_two_heads_are_refused_by_name(tmp_path: Path) -> None:
    write_revision(tmp_path, "a", "aaa", "None")
    write_revision(tmp_path, "b", "bbb", '"aaa"')
    write_revision(tmp_path, "c", "ccc", '"aaa"')
    with pytest.raises(RuntimeError, match=r"exactly one head revision \(found: bbb, ccc\)"):
        head_revision(tmp_path)


def test_a_file_without_a_revision_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("down_revision = None\n")
    with pytest.raises(RuntimeError, match=r"broken\.py: no `revision"):
        head_revision(tmp_path)


def test_checking_a_database_at_head_loads_no_alembic(tmp_path: Path) -> None:
    """What the worker runs at start (streams.wiring): Alembic's modules would stay resident for its life."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with migrated_engine(url):
        pass
    check = (
        "import sys\nfrom streams.store.engine import ensure_at_head, make_engine\n"
        f"ensure_at_head(make_engine({url!r}))\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"
