"""The repository stands alone: no tracked file refers to a path outside it (a clone elsewhere has nothing beside it).

Checks every file git tracks: relative references (``../x``) must resolve inside the repository from the file's
folder, ``Path(__file__).parents[N]`` must not climb above the root, and no file names the sibling folder our own
machines keep beside the project or an absolute path of this machine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VECTORS_PATH

ROOT = Path(__file__).resolve().parents[2]

# Written in pieces so that this file does not match its own patterns.
_SIBLING = re.compile("|".join([r"\.\./" + "shared", r"\.parent\s*/\s*[\"']" + "shared", r"/" + "work/"]))
_RELATIVE = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]+)")
_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def _escapes(path: Path, text: str) -> list[str]:
    found = [f"names {m.group(0)!r}" for m in _SIBLING.finditer(text)]
    for m in _RELATIVE.finditer(text):
        target = (path.parent / m.group(1) / m.group(2)).resolve()
        if not target.is_relative_to(ROOT):
            found.append(f"refers to {m.group(0)!r} outside the repository")
    depth = len(path.relative_to(ROOT).parts) - 1
    for m in _PARENTS.finditer(text):
        if int(m.group(1)) > depth:
            found.append(f"climbs above the repository root with {m.group(0)!r}")
    return found


@pytest.fixture(scope="module")
def tracked() -> list[Path]:
    try:
        return _tracked_text_files()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot list the repository's files with git: {exc}")


def test_no_tracked_file_refers_outside_the_repository(tracked):
    problems = [f"{p.relative_to(ROOT)}: {what}" for p in tracked for what in _escapes(p, p.read_text("utf-8"))]
    assert problems == []


def test_check_catches_each_kind_of_escape(tmp_path):
    module = ROOT / "tests" / "unit" / "example.py"
    sibling = "../" + "shared/tuya/vectors.json"
    assert _escapes(module, f"VECTORS = {sibling!r}")
    assert _escapes(module, "see " + "../" * 3 + "outside.txt")
    assert _escapes(module, "ROOT = Path(__file__).resolve().parents[2]") == []
    assert _escapes(module, "ROOT = Path(__file__).resolve()." + "parents[3]")
    assert _escapes(module, "see ../../README.md") == []


def test_vectors_are_a_tracked_file_of_the_repository(tracked):
    assert VECTORS_PATH in tracked
