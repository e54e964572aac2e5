"""``tuya-archiver replay``: decode kept dead letters again (after a key or code fix), and re-derive history from
stored payloads (after a normalisation fix), each exactly once, in short transactions beside a running worker.

What the rest of the project may import:

- ``streams.replay.dead_letters``: ``DeadLetterReplay``, ``STORED``, ``ALREADY_STORED``
- ``streams.replay.messages``: ``MessageReplay``
- ``streams.replay.report``: ``DeadLetterReport``, ``MessageReport``

The other modules (derive: the pure comparisons; paging: the walk and its retries) are the replays' insides. The SQL
is in ``streams.store.replay`` (reading, resolving) and ``streams.store.rederive`` (re-derivation's writes).
"""
