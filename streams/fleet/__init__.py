"""Knowing the fleet: the data-point catalog and the sync of devices, specifications and users from the OpenAPI."""
