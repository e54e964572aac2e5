"""The rules' side effects: the reactor that turns a stored batch into outbox rows in the batch's transaction, and
the sender that delivers pending rows (Tuya commands, webhooks, log lines) exactly once."""
