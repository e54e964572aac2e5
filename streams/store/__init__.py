"""The archive in SQL: engines and migrations, the batch store the pipeline writes through, and the history queries.

What the rest of the project may import:

- ``streams.store.engine``: ``make_engine``, ``ensure_at_head``, ``unavailable_on_failure``
- ``streams.store.migrate``: ``upgrade``, ``downgrade``, ``current_revision``, ``head_revision``, ``check`` (the two
  revisions come from ``streams.store.revision``, which reads them without importing Alembic);
  ``streams.store.compact``: ``compact`` (a SQLite file rewritten: freed pages given back, today's page size)
- ``streams.store.sql``: ``ArchiveStore``, ``BatchCounts``; ``streams.store.isolate``: ``write_isolating`` (a batch
  stored with the messages the database refuses kept as dead letters), ``rules_hooks``, ``stored_message``
- ``streams.store.query``: ``list_devices``, ``find_device``, ``status_history_rows``, ``latest_values``, and the
  device's facts, events and commands; ``streams.store.series`` (a chart's points, raw or in time buckets) and
  ``streams.store.operations`` (the operations page's counts): what the CLI and the web view read
- ``streams.store.retention``: ``POLICIES``, ``count_older``, ``purge_older``
- ``streams.store.fleet``: the data-point catalog and what ``sync`` writes; ``streams.store.api_usage``: API paths
  tried and calls per day; ``streams.store.backfill``: gaps, checkpoints, the consumption time, device-log rows
- ``streams.store.replay``, ``streams.store.rederive``: what ``replay`` reads and writes
- ``streams.store.dialect``: ``insert`` (ON CONFLICT for the connection's dialect), ``chunks``

The other modules (rows, facts, prepared, statements, drivers, history: status values into the narrow tables;
settle: the recent ones into ``status_values``) are the batch store's insides.
"""
