"""``tuya-archiver simulate`` arguments and settings, before any broker is reached.

Publishing through the command: tests/integration/test_sim_publish.py.
"""

from __future__ import annotations

import pytest

from streams.cli import main
from tests.conftest import load_vectors

ACCESS_KEY = load_vectors()["pulsar_auth"]["access_key"]


def test_default_topic_needs_the_access_id(monkeypatch, capsys):
    monkeypatch.setenv("TUYA_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.delenv("TUYA_ACCESS_ID", raising=False)
    assert main(["simulate", "--url", "pulsar://127.0.0.1:9"]) == 2
    assert "TUYA_ACCESS_ID" in capsys.readouterr().err


def test_messages_need_the_access_key(monkeypatch, capsys):
    monkeypatch.delenv("TUYA_ACCESS_KEY", raising=False)
    assert main(["simulate", "--url", "pulsar://127.0.0.1:9", "--topic", "persistent://t/out/event"]) == 2
    assert "TUYA_ACCESS_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argument", [["--corrupt", "1.5"], ["--items", "6"], ["--count", "0"], ["--rate", "-1"], ["--gcm", "2"]]
)
def test_out_of_range_argument_is_a_usage_error(argument, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["simulate", "--url", "pulsar://127.0.0.1:9", *argument])
    assert stopped.value.code == 2
    assert argument[0] in capsys.readouterr().err
