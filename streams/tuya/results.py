"""Typed results of the OpenAPI endpoints the worker uses (SPEC.md §5), built from Tuya's ``result`` JSON.

Owns Tuya's JSON envelope and the result shapes built from it; unknown keys are ignored because Tuya adds keys
(STYLE.md P6). Every result carries Tuya's ``t`` and ``tid``. Pure: must not import httpx or do I/O.
The device's ``local_key`` is deliberately not kept: it is a device secret the archive has no use for.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streams.tuya.api_errors import NO_ANSWER, TuyaApiError, error_for

__all__ = [
    "ApiAnswer",
    "CommandResult",
    "DataPointSpec",
    "DeviceInfo",
    "DeviceLogEntry",
    "DeviceLogPage",
    "DeviceSpecification",
    "DeviceStatus",
    "device_log_page",
    "device_specification",
    "device_status",
    "envelope_answer",
    "failure_code",
    "tid_of",
]


class ApiAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A successful answer of any call: Tuya's ``result`` as decoded JSON, with ``t`` (ms) and ``tid``."""

    result: Any
    t: int
    tid: str


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    """Tuya's answer to a command: ``accepted`` is its ``result: true``; ``tid`` goes in the outbox row."""

    device_id: str
    accepted: bool
    t: int
    tid: str


class DeviceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The latest value of every data point, by code, as Tuya reports it (integers before ``scale``)."""

    device_id: str
    values: dict[str, Any]
    t: int
    tid: str


class DataPointSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One data point of a specification; ``values`` is Tuya's JSON-in-a-string, decoded."""

    code: str
    type: str
    values: dict[str, Any]

    @property
    def scale(self) -> int:
        """Decimal places: the reported integer divided by 10**scale is the value in ``unit``."""
        return int(self.values.get("scale") or 0)

    @property
    def unit(self) -> str:
        return str(self.values.get("unit") or "")


class DeviceSpecification(msgspec.Struct, frozen=True, kw_only=True):
    """The device's commandable ``functions`` and reported ``status`` points."""

    device_id: str
    category: str
    functions: tuple[DataPointSpec, ...]
    status: tuple[DataPointSpec, ...]
    t: int
    tid: str

    def point(self, code: str) -> DataPointSpec | None:
        """The status point ``code`` (reports are what gets scaled), else the function of that code."""
        for point in (*self.status, *self.functions):
            if point.code == code:
                return point
        return None

    def scale(self, code: str) -> int:
        point = self.point(code)
        return point.scale if point else 0

    def unit(self, code: str) -> str:
        point = self.point(code)
        return point.unit if point else ""


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Device details (``GET …/devices/{id}``); times are Tuya's epoch seconds."""

    id: str
    name: str = ""
    uid: str = ""
    category: str = ""
    product_id: str = ""
    product_name: str = ""
    online: bool = False
    sub: bool = False
    time_zone: str = ""
    active_time: int = 0
    update_time: int = 0
    t: int = 0
    tid: str = ""


class DeviceLogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One device log row: ``event_id`` 7 is a data point report, ``event_time`` is in ms."""

    code: str = ""
    value: Any = None
    event_time: int
    event_id: int = 0
    event_from: str = ""


class DeviceLogPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a device log query; ask for the next with ``start_row_key=next_row_key`` while ``has_next``."""

    device_id: str
    logs: tuple[DeviceLogEntry, ...]
    has_next: bool
    next_row_key: str
    t: int
    tid: str


class _Envelope(msgspec.Struct):
    """SPEC.md §5: ``code`` and ``msg`` are empty or absent on success; empty may be ``null`` or ``""``, as may any
    field but ``success``."""

    success: bool = False
    result: Any = None
    code: int | str | None = None
    msg: str | None = None
    t: int | None = None
    tid: str | None = None

    @property
    def failure(self) -> int:
        """Tuya's code of a failure as a number; NO_ANSWER when it has none."""
        code = self.code
        if isinstance(code, str):
            return int(code) if code.isascii() and code.isdigit() and len(code) <= 9 else NO_ANSWER
        return code or NO_ANSWER


def envelope_answer(content: bytes, *, path: str, retry_after: float | None = None) -> ApiAnswer:
    """The answer in Tuya's JSON envelope (SPEC.md §5); raise the typed error of ``success:false``.

    Raises:
        TuyaApiError: code 0 when the body is not Tuya's envelope, else Tuya's permanent code.
        TuyaRateLimited, TuyaServerError: for Tuya's rate-limit and busy codes.
    """
    try:
        envelope = msgspec.json.decode(content, type=_Envelope, strict=False)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TuyaApiError(NO_ANSWER, f"answer is not Tuya's JSON envelope: {exc}", path=path) from None
    if not envelope.success:
        raise error_for(envelope.failure, envelope.msg or "", envelope.tid or "", path=path, retry_after=retry_after)
    return ApiAnswer(result=envelope.result, t=envelope.t or 0, tid=envelope.tid or "")


def failure_code(content: bytes) -> int:
    """Tuya's ``code`` of a ``success:false`` body; 0 for a success or a body that is not an envelope."""
    try:
        envelope = msgspec.json.decode(content, type=_Envelope, strict=False)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return NO_ANSWER
    return NO_ANSWER if envelope.success else envelope.failure


def tid_of(content: bytes) -> str:
    """The ``tid`` of a body, or ``""`` when it has none (an HTML error page, say)."""
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return ""
    return str(body.get("tid") or "") if isinstance(body, dict) else ""


class _StatusItem(msgspec.Struct):
    code: str
    value: Any = None


def device_status(device_id: str, result: Any, t: int, tid: str) -> DeviceStatus:
    """Build from the ``result`` of ``…/status``, a list of ``{"code", "value"}``."""
    items = msgspec.convert(result, type=list[_StatusItem], strict=False)
    return DeviceStatus(device_id=device_id, values={item.code: item.value for item in items}, t=t, tid=tid)


class _RawPoint(msgspec.Struct):
    code: str
    type: str = ""
    values: str | dict[str, Any] = "{}"


class _RawSpecification(msgspec.Struct):
    category: str = ""
    functions: list[_RawPoint] = []
    status: list[_RawPoint] = []


class _RawLogPage(msgspec.Struct):
    logs: list[DeviceLogEntry] = []
    has_next: bool = False
    next_row_key: str | None = None


def _point(raw: _RawPoint) -> DataPointSpec:
    values = raw.values
    if isinstance(values, str):
        try:
            values = msgspec.json.decode(values or "{}")
        except msgspec.DecodeError:
            values = {}
    return DataPointSpec(code=raw.code, type=raw.type, values=values if isinstance(values, dict) else {})


def device_specification(device_id: str, result: Any, t: int, tid: str) -> DeviceSpecification:
    """Build from the ``result`` of ``…/specification(s)``; raise msgspec.ValidationError on another shape."""
    raw = msgspec.convert(result, type=_RawSpecification, strict=False)
    return DeviceSpecification(
        device_id=device_id,
        category=raw.category,
        functions=tuple(_point(p) for p in raw.functions),
        status=tuple(_point(p) for p in raw.status),
        t=t,
        tid=tid,
    )


def device_log_page(device_id: str, result: Any, t: int, tid: str) -> DeviceLogPage:
    """Build from the ``result`` of ``GET /v1.0/devices/{id}/logs``; raise msgspec.ValidationError otherwise."""
    raw = msgspec.convert(result, type=_RawLogPage, strict=False)
    return DeviceLogPage(
        device_id=device_id,
        logs=tuple(raw.logs),
        has_next=raw.has_next,
        next_row_key=raw.next_row_key or "",
        t=t,
        tid=tid,
    )
