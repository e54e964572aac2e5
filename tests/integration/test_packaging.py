"""The project installed as a package, not run from its clone: a wheel built from pyproject.toml, installed into a
folder of its own, upgrades an archive with its own migrations and finds the demo's rules.

Everything the installed code reads at run time must ship inside the wheel: a file beside the clone's packages
(``migrations/`` once was) works in the clone and in an editable install, and fails in a deployment that ran
``pip install .``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.store.revision import head_revision

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# What a wheel is built from: the project's metadata, its packages and the migrations streams/store/migrations links
# to (a copy, links kept, so that the build's own files stay out of the clone).
SOURCES = ("pyproject.toml", "README.md", "streams", "models", "migrations")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the project's wheel installed on its own (no dependencies: the test's environment has them)."""
    folder = tmp_path_factory.mktemp("package")
    source, wheels, site = folder / "source", folder / "wheels", folder / "site"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    return site


def run_installed(site: Path, cwd: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by this interpreter in ``cwd`` (outside the clone), importing the project from ``site`` only."""
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": f"sqlite:///{cwd / 'archive.db'}"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


CLI = "import sys; from streams.cli import main; sys.argv[0] = 'tuya-archiver'; sys.exit(main())"


def test_the_installed_package_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    found = run_installed(installed, tmp_path, "import streams, models; print(streams.__file__, models.__file__)")
    assert found.returncode == 0, found.stderr
    assert all(Path(path).is_relative_to(installed) for path in found.stdout.split())


def test_an_installed_package_upgrades_an_archive_with_the_migrations_it_ships(installed: Path, tmp_path: Path) -> None:
    upgraded = run_installed(installed, tmp_path, CLI, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = run_installed(installed, tmp_path, CLI, "db", "current", "--check")
    assert current.returncode == 0, current.stderr
    assert head_revision() in current.stdout


def test_an_installed_package_writes_no_revision_into_itself(installed: Path, tmp_path: Path) -> None:
    assert run_installed(installed, tmp_path, CLI, "db", "upgrade").returncode == 0
    versions = sorted((installed / "streams" / "store" / "migrations" / "versions").glob("*.py"))
    refused = run_installed(installed, tmp_path, CLI, "db", "revision", "-m", "x")
    assert refused.returncode == 2
    assert "an installed package's copy; run it in a clone" in refused.stderr
    assert sorted((installed / "streams" / "store" / "migrations" / "versions").glob("*.py")) == versions


def test_an_installed_package_checks_the_demo_s_rules_it_ships(installed: Path, tmp_path: Path) -> None:
    code = "from streams.demo import DEMO_RULES; print(DEMO_RULES)"
    found = run_installed(installed, tmp_path, code)
    assert found.returncode == 0, found.stderr
    rules = Path(found.stdout.strip())
    assert rules.is_relative_to(installed)
    checked = run_installed(installed, tmp_path, CLI, "rules", "check", str(rules))
    assert checked.returncode == 0, checked.stderr
