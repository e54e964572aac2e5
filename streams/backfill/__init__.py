"""Closing holes in the history: gaps the stream left (longer than Tuya keeps messages) and their backfill from
Tuya's device logs."""
