"""The JSON and CSV twins of the pages (Datasette's habit: the same URL with ``.json`` or ``.csv``).

Owns how values travel as data: times in ISO 8601 (UTC), JSON values as they are, ``null``/empty for none (and
``null`` for a number JSON cannot hold: infinite or not a number). A CSV cell of text that a spreadsheet would take
for a formula (``=``, ``+``, ``-``, ``@``) gets a leading ``'`` (OWASP's advice): device names, states and units are
user-controlled. Builds Starlette responses; nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from starlette.responses import Response

__all__ = ["csv_response", "json_ready", "json_response", "rows_as_dicts"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def json_ready(value: Any) -> Any:
    """``value`` with times as ISO text, rows as objects and decimals as numbers, all the way down."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float | Decimal):  # an average beyond a double's range is no number JSON can hold
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Row):
        return json_ready(dict(value._mapping))
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def rows_as_dicts(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def json_response(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(json_ready(data), ensure_ascii=False, indent=2, allow_nan=False)
    return Response(body, status_code=status_code, media_type="application/json")


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    """CSV with a header row, shown in the browser (``inline``) under a file name safe for any file system."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", filename).strip("._") or "data"
    headers = {"Content-Disposition": f'inline; filename="{safe}.csv"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
