"""A fresh PostgreSQL database per test, when a server is at hand (.ci/run starts one and sets
PIPEBOT_TEST_POSTGRES_URL to an account that may create databases)."""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

ADMIN_URL = os.environ.get("PIPEBOT_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not ADMIN_URL, reason="PIPEBOT_TEST_POSTGRES_URL is not set")


@contextmanager
def fresh_database() -> Iterator[str]:
    assert ADMIN_URL is not None
    name = f"pipebot_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        for attempt in range(40):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                break
            except ProgrammingError:  # an autovacuum worker (not ours to end) is in it: wait
                if attempt == 39:  # a leftover test database is not the test's failure
                    warnings.warn(f"test database {name} left behind: autovacuum held it", stacklevel=1)
                    break
                time.sleep(0.5)
        admin.dispose()
