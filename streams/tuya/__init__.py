"""Tuya's formats: ciphers, envelope, normalisation, request signing (pure), the OpenAPI client and its emulator."""
