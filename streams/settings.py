"""The one settings object: read from the environment and ``.env`` once, validated, frozen, passed down.

Owns every environment variable the program reads (DESIGN.md §6); no other module reads ``os.environ``.
The access key is a ``SecretStr``: it never appears in ``repr``, logs or errors. A bad value becomes a
:class:`~streams.errors.ConfigError` whose one line names the variable and what is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.durations import parse_duration
from streams.errors import ConfigError
from streams.urls import hide_password

__all__ = ["OPENAPI_URLS", "PULSAR_URLS", "Settings", "check_access_key", "load_settings"]

#: KEEP_MESSAGES' floor: purge keeps messages as long (streams.store.retention.REDELIVERY_MEMORY), for one reason.
MIN_KEEP_MESSAGES_S = 86_400.0
#: The longest duration a setting takes: a century, in seconds (the worker turns durations into timedelta).
LONGEST_S = 100 * 365 * 86_400.0

Region = Literal["cn", "us", "us-e", "eu", "eu-w", "in", "sg"]

# SPEC.md §1.1: the binary-protocol hosts per data centre. us-e, eu-w and sg are [UNCERTAIN] there; the CN doc
# of 2026-03 is the newest source, so it wins over the Java connector's older mapping.
PULSAR_URLS: dict[str, str] = {
    "cn": "pulsar+ssl://mqe.tuyacn.com:7285/",
    "us": "pulsar+ssl://mqe.tuyaus.com:7285/",
    "us-e": "pulsar+ssl://mqe-ueaz.tuyaus.com:7285/",
    "eu": "pulsar+ssl://mqe.tuyaeu.com:7285/",
    "eu-w": "pulsar+ssl://mqe-weaz.tuyaeu.com:7285/",
    "in": "pulsar+ssl://mqe.tuyain.com:7285/",
    "sg": "pulsar+ssl://mqe-sg.iotbing.com:7285/",
}

# SPEC.md §4.1. Singapore comes from a third-party report only [UNCERTAIN].
OPENAPI_URLS: dict[str, str] = {
    "cn": "https://openapi.tuyacn.com",
    "us": "https://openapi.tuyaus.com",
    "us-e": "https://openapi-ueaz.tuyaus.com",
    "eu": "https://openapi.tuyaeu.com",
    "eu-w": "https://openapi-weaz.tuyaeu.com",
    "in": "https://openapi.tuyain.com",
    "sg": "https://openapi-sg.iotbing.com",
}


def _url(value: str | None, schemes: tuple[str, ...], example: str, *, pulsar: bool) -> str | None:
    """``value`` without spaces around it if it is a URL of one of ``schemes`` with a host, perhaps a port, and
    nothing else (None: not set, the region's is used). Pulsar's may name several hosts and no ``user:password@``
    (pulsar-client reads none); the OpenAPI's may carry one (httpx's basic auth, for a gateway)."""
    if value is None:
        return None
    value = value.strip()
    if not value.isprintable():  # urlsplit drops a tab or a line break; the clients do not
        raise ValueError("must be a URL without control characters")
    parts = urlsplit(value)
    has_userinfo = parts.username is not None or parts.password is not None
    extra = (has_userinfo and pulsar) or parts.path.strip("/") or parts.query or parts.fragment
    if parts.scheme not in schemes or not _hosts_readable(parts, pulsar=pulsar) or extra:
        kinds = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"must be a {kinds} URL of a host (and port) and nothing else, e.g. {example}")
    return parts.scheme + value[len(parts.scheme) :]  # pulsar-client takes its schemes in lower case only


#: A host name (perhaps ending in "." or in another script than Latin: httpx takes both) or an IPv4 address;
#: underscores too, which container names have.
_HOST_NAME = re.compile(r"\w([\w.-]*\w)?\.?")
#: A host and its port as a URL writes them: the port, if any, after the name's or the brackets' end.
_HOST_PORT = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]+)(:(?P<port>[0-9]{1,5}))?")


def _hosts_readable(parts: SplitResult, *, pulsar: bool) -> bool:
    """Whether each host is a name or an address with, perhaps, a port of 1 to 65535. Pulsar's URL may name several
    (``pulsar://a:6650,b:6650``) and no IPv6 address in brackets (pulsar-client refuses it); the OpenAPI's one, which
    may be one."""
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(",") if pulsar else [hosts]:
        written = _HOST_PORT.fullmatch(host)
        if written is None or not 0 < int(written["port"] or 1) < 65536:
            return False
        name = written["name"]
        if name.startswith("["):
            if pulsar or not _ipv6(name[1:-1]):
                return False
        elif not _HOST_NAME.fullmatch(name) or (pulsar and not name.isascii()) or not _address_if_numeric(name):
            return False
    return True


def _address_if_numeric(name: str) -> bool:
    """Whether a name of digits and dots (which clients read as an IPv4 address) is one."""
    if not all(part.isdigit() and part.isascii() for part in name.rstrip(".").split(".")):
        return True
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text.partition("%")[0])
    except ValueError:
        return False
    return True


def check_access_key(key: str) -> str:
    """``key`` if it can be the Access Secret of a cloud project (its value is never put in the error).

    Raises:
        ValueError: it cannot.
    """
    # SPEC.md §2.3: the AES key is accessKey[8:24], so a usable key has at least 24 characters (Tuya's are 32).
    if len(key) != 32 or not key.isascii():
        raise ValueError("must be the 32-character Access Secret of the cloud project (ASCII letters and digits)")
    return key


class Settings(BaseSettings):
    """Everything configurable, by environment variable (upper-case field name) or ``.env``."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
        case_sensitive=False,
    )

    # Tuya project credentials and endpoints.
    tuya_access_id: str | None = None
    tuya_access_key: SecretStr | None = None
    tuya_region: Region | None = None
    tuya_mq_env: Literal["event", "event-test"] = "event"
    tuya_pulsar_url: str | None = None
    tuya_openapi_url: str | None = None
    tuya_pulsar_tls_verify: bool = True
    tuya_idle_reconnect: float = Field(600.0, gt=0, le=LONGEST_S)

    # Worker.
    database_url: str = "sqlite:///tuya-archive.db"
    batch_size: int = Field(1000, ge=1, le=50_000)
    batch_timeout_ms: int = Field(200, ge=1, le=60_000)
    metrics_port: int = Field(9464, ge=0, le=65535)
    # Commits in a second process (streams.writer): the worker decodes while the writer commits. With it, at most
    # WRITER_IN_FLIGHT batches are unacknowledged, and the batches waiting, or arriving within COMMIT_WAIT_MS, are
    # committed in one transaction of up to COMMIT_MAX_MESSAGES messages.
    writer_process: bool = True
    writer_in_flight: int = Field(15, ge=1, le=64)
    commit_max_messages: int = Field(5000, ge=1, le=100_000)
    commit_wait_ms: int = Field(1000, ge=0, le=60_000)
    # How many new status values wait in status_recent before they are settled into status_values in one
    # transaction (streams.store.settle); unset: the database's default; 0: straight into status_values.
    history_settle_values: int | None = Field(None, ge=0, le=10_000_000)
    # How long whole messages (decrypted payload and properties, for `replay --messages` and forensics) are kept;
    # their history is kept until `purge`. 0 keeps them for ever. streams.store.expiry.
    keep_messages: float = Field(14 * 86_400.0, ge=0, le=LONGEST_S)

    # OpenAPI client.
    tuya_sign_legacy: bool = False
    tuya_commands_legacy_path: bool = False
    tuya_api_rate: float = Field(5.0, gt=0)
    tuya_api_daily_quota: int = Field(500_000, ge=1)

    # Rules.
    rules_file: Path | None = Path("config/rules.yaml")
    rules_dry_run: bool = False
    # Seconds after which a command still in flight is taken as lost by a crashed sender and checked, not resent;
    # longer than any OpenAPI call with its retries can take.
    rules_in_flight_lease: float = Field(300.0, gt=0, le=LONGEST_S)

    # Fleet sync (devices, data points, users from the OpenAPI). Durations: seconds, or text such as 6h, 30m, 7d.
    tuya_app_schema: str | None = None
    # Seconds between the worker's syncs; 0 turns the worker's sync (and its background backfill) off.
    sync_interval: float = Field(21_600.0, ge=0, le=LONGEST_S)

    # Gaps and backfill: how long Tuya keeps unacknowledged messages (SPEC.md §1.6: 2 hours) and device logs
    # (§10.3: about 7 days on the free tier); a lost stretch shorter than the margin is not recorded as a gap.
    tuya_message_retention: float = Field(7_200.0, gt=0, le=LONGEST_S)
    tuya_log_retention: float = Field(7 * 86_400.0, gt=0, le=LONGEST_S)
    gap_margin: float = Field(300.0, ge=0, le=LONGEST_S)

    # Scale-out.
    kafka_url: str | None = None

    # The read-only web view (`serve`): the token every request must carry; needed to listen beyond loopback.
    serve_token: SecretStr | None = None

    @field_validator("tuya_access_key")
    @classmethod
    def _key_is_32_chars(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_access_key(value.get_secret_value())
        return value

    @field_validator(
        "sync_interval", "tuya_message_retention", "tuya_log_retention", "gap_margin", "keep_messages", mode="before"
    )
    @classmethod
    def _seconds_or_duration(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() and not value.strip().replace(".", "", 1).isdigit():
            return parse_duration(value).total_seconds()
        return value

    @field_validator("keep_messages")
    @classmethod
    def _keep_messages_past_redelivery(cls, value: float) -> float:
        # A message row tells a redelivery from news: gone too early, a message Tuya delivers again would be news
        # again to the rules. Tuya redelivers for 2 hours (TUYA_MESSAGE_RETENTION); a day leaves a wide margin.
        if 0 < value < MIN_KEEP_MESSAGES_S:
            raise ValueError("must be 0 (keep them for ever) or at least 1d (Tuya redelivers messages for 2 hours)")
        return value

    @field_validator("tuya_app_schema", mode="before")
    @classmethod
    def _empty_means_no_schema(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("rules_file", mode="before")
    @classmethod
    def _empty_means_no_rules(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("serve_token", mode="before")
    @classmethod
    def _token_is_strong(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or (isinstance(text, str) and text == ""):
            return None  # SERVE_TOKEN= (empty) means no token, as unset does
        if not isinstance(text, str) or text != text.strip() or len(text) < 16:
            raise ValueError("must be at least 16 characters, without leading or trailing spaces")
        if any(not 0x21 <= ord(char) <= 0x7E for char in text):
            raise ValueError("must be printable ASCII without spaces (it travels in an HTTP header)")
        return value

    @field_validator("tuya_openapi_url")
    @classmethod
    def _openapi_url_is_http(cls, value: str | None) -> str | None:
        url = _url(value, ("http", "https"), OPENAPI_URLS["eu"], pulsar=False)
        if url is not None:
            import httpx  # only when the setting is given: the clients that use it load httpx anyway

            try:
                httpx.URL(url)
            except httpx.InvalidURL as exc:  # a host name IDNA refuses, say
                raise ValueError(f"httpx cannot use it: {exc}") from None
        return url

    @field_validator("tuya_pulsar_url")
    @classmethod
    def _pulsar_url_is_pulsar(cls, value: str | None) -> str | None:
        return _url(value, ("pulsar", "pulsar+ssl"), PULSAR_URLS["eu"], pulsar=True)

    @field_validator("tuya_access_id")
    @classmethod
    def _id_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        if value is not None and (not value.isprintable() or any(character.isspace() for character in value)):
            raise ValueError("must be the Access ID alone: no spaces, line breaks or control characters")
        return value

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of ``names`` (field names) that is not set."""
        for name in names:
            if getattr(self, name) is None:
                raise ConfigError(f"{name.upper()}: not set (needed by this command)")

    @property
    def access_key(self) -> str:
        """The Access Secret in plain text, for the crypto and signing code only."""
        self.require("tuya_access_key")
        assert self.tuya_access_key is not None
        return self.tuya_access_key.get_secret_value()

    @property
    def pulsar_url(self) -> str:
        if self.tuya_pulsar_url:
            return self.tuya_pulsar_url
        if self.tuya_region is None:
            raise ConfigError("TUYA_REGION: not set (set it, or TUYA_PULSAR_URL, to reach the message service)")
        return PULSAR_URLS[self.tuya_region]

    @property
    def openapi_url(self) -> str:
        if self.tuya_openapi_url:
            return self.tuya_openapi_url.rstrip("/")
        if self.tuya_region is None:
            raise ConfigError("TUYA_REGION: not set (set it, or TUYA_OPENAPI_URL, to reach the OpenAPI)")
        return OPENAPI_URLS[self.tuya_region]

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict fit for a log line: secrets masked, URLs' passwords hidden."""
        shown = self.model_dump(mode="json")
        if self.tuya_access_key is not None:
            shown["tuya_access_key"] = "**********"
        for name in ("database_url", "kafka_url", "tuya_openapi_url", "tuya_pulsar_url"):
            if shown[name] is not None:
                shown[name] = hide_password(shown[name])
        return shown


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from environment, ``.env`` and ``overrides``; raise ConfigError with one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        variable = ".".join(str(part) for part in error["loc"]).upper() or "settings"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return "; ".join(problems)
