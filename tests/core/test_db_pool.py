"""The web server's connection pool: connections are lent, returned and replaced when the
database cut them (a restart), so requests after an outage work without a server restart."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = textwrap.dedent(
    """
    import django, psycopg, os
    django.setup()
    from django.db import close_old_connections, connection

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        close_old_connections()  # what the end of each request does
        return pid

    assert connection.pool is not None and connection.pool.max_size == 3
    seen = {backend_pid() for _ in range(20)}
    assert len(seen) <= 3, f"20 requests opened {len(seen)} connections"
    with psycopg.connect(os.environ["ADMIN_URL"], autocommit=True) as admin:
        for pid in seen:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    after = {backend_pid() for _ in range(5)}
    assert not after & seen, "a connection the server cut must not be lent again"
    print("ok", sorted(seen), sorted(after))
    """
)


def test_pooled_connections_are_reused_and_replaced_after_the_server_cuts_them(
    settings,
) -> None:
    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = dict(
        os.environ,
        DATABASE_URL=url,
        ADMIN_URL=url,
        RADREVIEW_DB_POOL_MAX="3",
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")
