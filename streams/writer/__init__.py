"""The writer process: the worker's commits on the second core.

One Python process keeps one core busy. ``tuya-archiver run`` therefore splits the pipeline in two (WRITER_PROCESS,
on by default): the worker's own process receives from Pulsar, decodes, builds each batch's rows
(:meth:`~streams.pipeline.Pipeline.prepare`) and acknowledges; a writer process it starts holds the database
connection and runs each batch's transaction: the rows, and the rules with their state and outbox rows in the same
transaction. Batches travel over a pipe as MessagePack frames, in order; while the writer commits one, the worker
prepares the next (at most WRITER_IN_FLIGHT batches unacknowledged), and the writer commits a batch together with
those waiting behind it and those that arrive within COMMIT_WAIT_MS, in one transaction of up to COMMIT_MAX_MESSAGES
messages.

The guarantees stay those of one process:
- a batch is acknowledged only after the writer said it committed; a transaction holds a batch's rows, rule state
  and commands, or none of them;
- kill -9 of the worker: the writer reads the end of its pipe, finishes or rolls back its transaction and exits; what
  was committed but not acknowledged is redelivered and ignored (the archive is idempotent, rules react only to
  messages new to it);
- kill -9 of the writer: the worker starts a new one and sends it every batch not yet reported committed, in order;
- database down: the writer retries the same transaction with backoff while the worker waits, acknowledging nothing;
- SIGTERM/SIGINT reach the worker (the writer ignores them): it stops receiving, lets the writer commit what it has
  (or give up if the database is down), acknowledges what was committed, and exits.

The modules: ``runner`` (PipelinedRunner, the worker's loop), ``process`` (WriterProcess, the worker's end of the
pipe), ``frames`` (what crosses it), ``child`` (the writer process itself, ``python -m streams.writer``). This file
imports none of them: the writer process needs neither pulsar-client nor Prometheus.
"""
