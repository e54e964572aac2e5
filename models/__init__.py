"""Data shapes only: typed records, the SQL tables, the rule schema. Never imports ``streams``."""
