"""The traffic simulator and the embedded broker, used by the demo, the tests and the benchmark.

- :mod:`~streams.sim.fleet`: devices and the encrypted Tuya messages they send (pure, seeded, injected clock).
- :mod:`~streams.sim.products`, :mod:`~streams.sim.payloads`, :mod:`~streams.sim.seal`: what the fleet is made of
  (product data points, payload shapes per protocol, envelope and corruptions).
- :mod:`~streams.sim.publisher`: send messages with pulsar-client, every result checked.
- :mod:`~streams.sim.broker`, :mod:`~streams.sim.kafka_broker`: pulsar-lite and Tansu on loopback, on the lifecycle of
  :mod:`~streams.sim.process` (start, stop, kill, restart, never outliving their owner).

The worker itself never imports this package.
"""

from streams.sim.broker import BrokerError, EmbeddedBroker, broker_binary, burn_consumer_ids, free_port
from streams.sim.fleet import DEFAULT_MIX, KINDS, MAX_ITEMS, Fleet, SimMessage
from streams.sim.products import PRODUCTS, Device, Product
from streams.sim.publisher import PublishReport, publish
from streams.sim.seal import CIPHERS, CORRUPTIONS, Cipher, Corruption, Sealer

__all__ = [
    "CIPHERS",
    "CORRUPTIONS",
    "DEFAULT_MIX",
    "KINDS",
    "MAX_ITEMS",
    "PRODUCTS",
    "BrokerError",
    "Cipher",
    "Corruption",
    "Device",
    "EmbeddedBroker",
    "Fleet",
    "Product",
    "PublishReport",
    "Sealer",
    "SimMessage",
    "broker_binary",
    "burn_consumer_ids",
    "free_port",
    "publish",
]
