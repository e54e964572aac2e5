"""streams/settings.py: validation, region URLs, secret masking, and the one-line error of the CLI."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import make_url

from streams.cli import main
from streams.errors import ConfigError
from streams.settings import MIN_KEEP_MESSAGES_S, OPENAPI_URLS, PULSAR_URLS, load_settings
from streams.store.retention import REDELIVERY_MEMORY

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("TUYA_ACCESS_ID", "TUYA_ACCESS_KEY", "TUYA_REGION", "TUYA_PULSAR_URL", "TUYA_OPENAPI_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize("region", sorted(PULSAR_URLS))
def test_region_selects_both_endpoints(monkeypatch, region):
    monkeypatch.setenv("TUYA_REGION", region)
    settings = load_settings()
    assert settings.pulsar_url == PULSAR_URLS[region]
    assert settings.openapi_url == OPENAPI_URLS[region]


def test_override_urls_win_over_region(monkeypatch):
    monkeypatch.setenv("TUYA_REGION", "eu")
    monkeypatch.setenv("TUYA_PULSAR_URL", "pulsar://127.0.0.1:6650")
    monkeypatch.setenv("TUYA_OPENAPI_URL", "http://127.0.0.1:8080/")
    settings = load_settings()
    assert settings.pulsar_url == "pulsar://127.0.0.1:6650"
    assert settings.openapi_url == "http://127.0.0.1:8080"


def test_env_file_is_honoured(tmp_path):
    (tmp_path / ".env").write_text("TUYA_REGION=in\nTUYA_MQ_ENV=event-test\n")
    settings = load_settings()
    assert (settings.tuya_region, settings.tuya_mq_env) == ("in", "event-test")


def test_missing_region_names_the_variable():
    with pytest.raises(ConfigError, match="TUYA_REGION"):
        _ = load_settings().pulsar_url


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TUYA_REGION", "mars"),
        ("TUYA_MQ_ENV", "prod"),
        ("BATCH_SIZE", "many"),
        ("TUYA_ACCESS_KEY", "short"),
        ("TUYA_ACCESS_KEY", "0123456789abcdéf0123456789abcdef"),  # 32 characters, but é is two bytes of the key
        ("KEEP_MESSAGES", "3h"),
        ("KEEP_MESSAGES", "a week"),
        ("TUYA_OPENAPI_URL", "notaurl"),
        ("TUYA_OPENAPI_URL", "pulsar+ssl://mqe.tuyaeu.com:7285/"),
        ("TUYA_PULSAR_URL", "https://openapi.tuyaeu.com"),
        ("TUYA_PULSAR_URL", "pulsar+ssl://"),
        ("TUYA_OPENAPI_URL", "https://gw.example/tuya"),  # a token call would leave the path out
        ("TUYA_OPENAPI_URL", "https://openapi.tuyaeu.com/?x=1"),
        ("KEEP_MESSAGES", "99999999999999999999"),
        ("GAP_MARGIN", "36600d"),
        ("TUYA_IDLE_RECONNECT", "inf"),
        ("TUYA_API_RATE", "nan"),
        ("TUYA_OPENAPI_URL", "https://openapi.tuyaeu.com:443x"),  # httpx raised at the first call
        ("TUYA_PULSAR_URL", "pulsar+ssl://mqe.tuyaeu.com:99999"),
        ("TUYA_PULSAR_URL", "pulsar+ssl://mq-a.example:7285,mq-b.example:72x5"),
        ("TUYA_PULSAR_URL", "pulsar+ssl://mq-a.example:7285,"),
        ("TUYA_OPENAPI_URL", "https://openapi-a.example:443,openapi-b.example:443"),  # httpx raised at the first call
        ("TUYA_OPENAPI_URL", "https://openapi-a.example,openapi-b.example"),
        ("TUYA_OPENAPI_URL", "https://open api.example"),
        ("TUYA_PULSAR_URL", "pulsar://[::1]:6650"),  # pulsar-client refuses it: the worker retried for ever
        ("TUYA_PULSAR_URL", "pulsar+ssl://mqe.tuyaeu.com:"),  # so it does an empty port
        ("TUYA_PULSAR_URL", "pulsar://127.0.0.1:0"),
        ("TUYA_OPENAPI_URL", "http://[::1]8750"),  # read as port 80
        ("TUYA_OPENAPI_URL", "http://[v1.fe]:80"),
        ("TUYA_OPENAPI_URL", "http://192.168.1.300:8080"),  # httpx refused it at the first client: a traceback
        ("TUYA_OPENAPI_URL", "https://ｏｐｅｎａｐｉ.tuyaeu.com"),  # not a name IDNA takes
        ("TUYA_OPENAPI_URL", "https://openapi.tuya\teu.com"),  # urlsplit drops the tab
        ("TUYA_PULSAR_URL", "pulsar://999.1.1.1:6650"),
        ("TUYA_PULSAR_URL", "pulsar://bücher.example:6650"),  # pulsar-client does not encode it
        ("TUYA_PULSAR_URL", "pulsar://user:hunter4@127.0.0.1:6650"),  # the client took it for the host, and logged it
        ("TUYA_ACCESS_ID", "p3knx7rsq8dwf5y9h2ab\n"),  # read from a secret's file: the broker refused the topic
        ("TUYA_ACCESS_ID", "p3knx7rsq8dwf5y9h2ab "),
    ],
)
def test_malformed_setting_stops_cli_with_one_line_naming_it(monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    assert main(["decode"]) == 2
    err = capsys.readouterr().err
    assert variable in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 14 * 86_400.0), ("0", 0.0), ("30d", 30 * 86_400.0), ("1d", 86_400.0)]
)
def test_keep_messages_is_a_duration_zero_or_at_least_a_day(monkeypatch, value, seconds):
    if value is not None:
        monkeypatch.setenv("KEEP_MESSAGES", value)
    assert load_settings().keep_messages == seconds


def test_access_key_never_in_repr_redacted_or_errors(monkeypatch):
    monkeypatch.setenv("TUYA_ACCESS_KEY", SECRET)
    settings = load_settings()
    assert settings.access_key == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.redacted())


def test_bad_access_key_error_does_not_echo_it(monkeypatch):
    leaked = "x" * 31
    monkeypatch.setenv("TUYA_ACCESS_KEY", leaked)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert leaked not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:hunter2@db/app",
        "postgresql://app:hun/ter2+x@127.0.0.1:1/db",  # a "/" in it: SQLAlchemy takes it as the password
        "postgresql://app@127.0.0.1:1/db?password=hunter2",  # libpq's password parameter
        "postgresql://app@127.0.0.1:1/db?sslmode=require&sslpassword=hunter2",
    ],
)
def test_database_password_hidden_in_redacted(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    shown = load_settings().redacted()["database_url"]
    assert "hunter2" not in shown and "ter2" not in shown and "***" in shown
    assert make_url(url).password is not None or "password=" in url  # a real password, as SQLAlchemy reads it


def test_empty_rules_file_means_no_rules(monkeypatch):
    monkeypatch.setenv("RULES_FILE", "")
    assert load_settings().rules_file is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg//archiver:hunter2@db/archive",
        "postgresql://archiver:hunter2@db:port/archive",
        "host=db user=archiver password=hunter2 dbname=archive",  # libpq's keywords
        "postgresql:/archiver:hunter2@db/archive",  # one slash: no rule finds the password, so nothing is echoed
    ],
)
def test_a_database_url_that_does_not_parse_is_one_line_without_its_password(monkeypatch, capsys, url):
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["devices"]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL: not a database URL" in err and "hunter2" not in err and len(err.strip().splitlines()) == 1


def test_every_url_setting_shows_no_password_in_redacted(monkeypatch):
    monkeypatch.setenv("KAFKA_URL", "kafka://user:hunter2@broker:9092")
    monkeypatch.setenv("TUYA_OPENAPI_URL", "https://user:hunter3@openapi.example")
    shown = str(load_settings().redacted())
    assert not any(secret in shown for secret in ("hunter2", "hunter3")) and "kafka://user:***@" in shown


def test_keep_messages_has_the_floor_purge_keeps_messages_for():
    assert timedelta(seconds=MIN_KEEP_MESSAGES_S) == REDELIVERY_MEMORY  # one rule: a redelivery is not news


def test_a_url_setting_s_scheme_is_taken_in_lower_case(monkeypatch):
    monkeypatch.setenv("TUYA_PULSAR_URL", "PULSAR+SSL://mqe.tuyaeu.com:7285")
    monkeypatch.setenv("TUYA_OPENAPI_URL", "http://[::1]:8080")
    settings = load_settings()
    assert (settings.pulsar_url, settings.openapi_url) == ("pulsar+ssl://mqe.tuyaeu.com:7285", "http://[::1]:8080")


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("TUYA_PULSAR_URL", "pulsar://pulsar-broker.default.svc.cluster.local.:6650"),  # a name ending in "."
        ("TUYA_OPENAPI_URL", "https://openapi.tuyaeu.com."),
        ("TUYA_OPENAPI_URL", "https://tuya-gw.bücher.example"),  # httpx encodes it
        ("TUYA_PULSAR_URL", "pulsar://tuya_broker:6650"),  # a container's name
    ],
)
def test_host_names_clients_take_are_taken(monkeypatch, variable, url):
    monkeypatch.setenv(variable, url)
    settings = load_settings()
    assert url == (settings.pulsar_url if variable == "TUYA_PULSAR_URL" else settings.openapi_url)


def test_a_pulsar_url_of_several_hosts_is_taken(monkeypatch):
    monkeypatch.setenv("TUYA_PULSAR_URL", "pulsar+ssl://mq-a.example:7285,mq-b.example:7285")
    assert load_settings().pulsar_url == "pulsar+ssl://mq-a.example:7285,mq-b.example:7285"


def test_a_url_setting_is_read_without_the_spaces_around_it(monkeypatch):
    monkeypatch.setenv("TUYA_PULSAR_URL", " pulsar://127.0.0.1:6650\n")
    assert load_settings().pulsar_url == "pulsar://127.0.0.1:6650"  # the client refused " pulsar" as a scheme


def test_run_against_an_unreachable_database_is_one_line_naming_it(monkeypatch, capsys):
    # a traceback of 130 lines that did not say which setting
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TUYA_ACCESS_ID", "p3knx7rsq8dwf5y9h2ab")
    monkeypatch.setenv("TUYA_ACCESS_KEY", SECRET)
    monkeypatch.setenv("TUYA_REGION", "eu")
    monkeypatch.setenv("RULES_FILE", "")
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://archiver:hunter2@127.0.0.1:{port}/archive")
    assert main(["run", "--max-messages", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tuya-archiver: database unavailable") and err.rstrip().endswith("(DATABASE_URL)")
    assert "Traceback" not in err and "hunter2" not in err and SECRET not in err
