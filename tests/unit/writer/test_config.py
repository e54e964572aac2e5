"""streams/wiring.py's writer_config: the writer process logs as the worker does (level, and its file if any)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from models.rules import RuleSet
from streams.settings import load_settings
from streams.wiring import writer_config


@pytest.fixture
def root_handlers():
    root = logging.getLogger()
    kept, level = root.handlers[:], root.level
    yield root
    for handler in root.handlers:
        if handler not in kept:
            handler.close()
    root.handlers[:], root.level = kept, level


def test_a_worker_logging_to_a_file_has_its_writer_log_there(root_handlers, tmp_path: Path) -> None:
    root_handlers.handlers[:] = [logging.FileHandler(tmp_path / "demo.log"), logging.StreamHandler()]
    root_handlers.setLevel(logging.WARNING)
    config = writer_config(load_settings(), RuleSet(), "sqlite")
    assert (config.log_file, config.log_level) == (str(tmp_path / "demo.log"), logging.WARNING)


def test_a_worker_logging_to_its_terminal_has_its_writer_log_to_stderr(root_handlers) -> None:
    root_handlers.handlers[:] = [logging.StreamHandler()]
    assert writer_config(load_settings(), RuleSet(), "sqlite").log_file is None
