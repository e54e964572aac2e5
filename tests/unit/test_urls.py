"""streams/urls.py: a password is hidden wherever a setting's URL or libpq connection string may carry one."""

from __future__ import annotations

import pytest

from streams.urls import hide_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr/et@db/app", "postgresql://app:***@db/app"),
        ("postgresql://archiver:correct horse@db/app", "postgresql://archiver:***@db/app"),  # SQLAlchemy takes it
        ("postgresql://admin@server:s3cret@server.example/app", "postgresql://admin@server:***@server.example/app"),
        ("postgresql://my user:s3cret@db/app", "postgresql://my user:***@db/app"),
        (
            "postgresql://app@db/app?sslmode=require&password=s3cr3t&x=1",
            "postgresql://app@db/app?sslmode=require&password=***&x=1",
        ),
        ("postgresql://app@db/app?sslpassword=s3cr3t", "postgresql://app@db/app?sslpassword=***"),
        # libpq's keywords: an "&" is no separator there, a "\" escapes a space, quotes hold spaces
        ("host=db user=app password=Xy7&Qz9!k dbname=app", "host=db user=app password=*** dbname=app"),
        ("password=s3\\ cr3t host=db", "password=*** host=db"),
        ("host=db password = 's3 cr\\'3t' dbname=app", "host=db password = *** dbname=app"),
        ("kafka://broker:9092", "kafka://broker:9092"),
        (
            "postgresql+psycopg://archiver:Zx9?kq/T2@db:5432/archive",
            "postgresql+psycopg://archiver:***@db:5432/archive",
        ),
    ],
)
def test_a_password_is_hidden_whole(url, shown):
    assert hide_password(url) == shown
