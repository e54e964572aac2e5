"""Transports that deliver Tuya's messages: the Pulsar consumer (and, for scale-out, Kafka)."""
