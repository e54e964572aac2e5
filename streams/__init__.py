"""tuya-archiver: behaviour (decode, normalise, store, rules, sources, CLI). Shapes live in ``models``."""
