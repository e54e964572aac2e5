"""streams/settings.py's SERVE_TOKEN: a SecretStr, validated, masked (the web view's setting)."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import load_settings

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("SERVE_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_the_token_is_secret_in_repr_and_redacted_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVE_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.serve_token is not None and settings.serve_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.redacted())


@pytest.mark.parametrize("value", [None, ""])
def test_unset_or_empty_means_no_token(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("SERVE_TOKEN", value)
    assert load_settings().serve_token is None


@pytest.mark.parametrize("value", ["short", f" {TOKEN}", "spaces inside the token", "non-ascii-tökén-0123456789"])
def test_a_weak_or_unsendable_token_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SERVE_TOKEN", value)
    with pytest.raises(ConfigError, match=r"^SERVE_TOKEN: ") as caught:
        load_settings()
    assert value.strip() not in str(caught.value) and "\n" not in str(caught.value)
