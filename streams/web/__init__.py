"""The read-only web view of the archive (``tuya-archiver serve``): devices, a device's charts, operations.

What the rest of the project may import:

- ``streams.web.server``: ``serve_in_thread`` (the demo, tests), ``open_view``, ``listen``, ``serve_forever`` (CLI)
- ``streams.web.app``: ``create_app`` (an app over an engine the caller opened read-only)
- ``streams.web.security``: ``require_token_for``, ``is_loopback``

Inside: routes.py (URLs, formats), pages.py and operations.py (what each page holds), series.py (each chart's data),
downsample.py and window.py (the arithmetic of buckets and time windows), charts.py and axes.py (SVG), display.py
and formats.py (values for people; JSON and CSV), templates/ and static/. Queries live in streams/store/ (query.py,
series.py, operations.py). Imports nothing of the worker's runtime (runner, pipeline, sources, outbox).
"""
