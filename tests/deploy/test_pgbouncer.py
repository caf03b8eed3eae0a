"""PgBouncer (Debian's 1.18) with the shipped pgbouncer.ini — transaction pooling, SCRAM userlist from
userlist.sh — in front of the real PostgreSQL, and the app under gunicorn (two workers, shipped config) running
as the least-privilege loan_app role through it: an HTTP scenario, then concurrent requests, with no
prepared-statement errors. Also shows why that matters: psycopg's server-side prepared statements break under
transaction pooling, prepare_threshold=None does not."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.kit import (
    DEPLOY,
    IS_ROOT,
    PYTHON,
    Proc,
    app_env,
    apt_install,
    create_prod_database,
    free_port,
    pg_url,
    psql,
    require_app,
    substitute,
)
from tests.deploy.scenario import lend, present_steps, serve
from tests.deploy.test_postgres_roles import migrate

pytestmark = pytest.mark.deploy

INI = DEPLOY / "pgbouncer" / "pgbouncer.ini"
APP_PASSWORD = "Bouncer-" + uuid.uuid4().hex


@dataclass
class Bouncer:
    port: int
    db: str
    app_role: str
    proc: Proc

    def url(self, driver: str = "postgresql", password: str = APP_PASSWORD) -> str:
        return pg_url(self.db, self.app_role, driver=driver, port=self.port, password=password)


@pytest.fixture
def bouncer(prod_roles: dict[str, str]) -> Iterator[Bouncer]:
    apt_install("pgbouncer")
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    names = prod_roles
    create_prod_database(names)
    migrate(names)  # straight to 5432 as the owner, as docs/DEPLOY.md does
    psql(f"ALTER ROLE \"{names['app']}\" PASSWORD '{APP_PASSWORD}'")  # SCRAM (PG15's password_encryption)

    tmp = Path(tempfile.mkdtemp(prefix="deploy-check-pgbouncer-"))
    tmp.chmod(0o755)
    userlist = tmp / "userlist.txt"
    r = subprocess.run([str(DEPLOY / "pgbouncer" / "userlist.sh"), names["app"]], capture_output=True, text=True,
                       env=dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f'"{names["app"]}" "SCRAM-SHA-256$'), "userlist holds the SCRAM secret only"
    line = re.compile(r'^"[^"]+" "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"$')
    example = [x for x in (DEPLOY / "pgbouncer" / "userlist.txt.example").read_text().splitlines()
               if x and not x.startswith(";")]
    assert example and all(line.match(x) for x in example), "userlist.txt.example shows the real format"
    assert all(line.match(x) for x in r.stdout.splitlines()), r.stdout
    userlist.write_text(r.stdout)
    missing = subprocess.run([str(DEPLOY / "pgbouncer" / "userlist.sh"), names["owner"]], capture_output=True,
                             text=True, env=dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres"))
    assert missing.returncode != 0, "a role without a password is reported, not silently left out"

    port = free_port()
    ini = substitute(INI.read_text(), [
        ("loan_db_prod = host=127.0.0.1 port=5432 dbname=loan_db_prod",
         f"{names['db']} = host=127.0.0.1 port=5432 dbname={names['db']}"),
        ("listen_port = 6432", f"listen_port = {port}"),
        ("unix_socket_dir = /var/run/postgresql", f"unix_socket_dir = {tmp}"),
        ("auth_file = /etc/pgbouncer/userlist.txt", f"auth_file = {userlist}"),
        ("logfile = /var/log/postgresql/pgbouncer.log", f"logfile = {tmp}/pgbouncer.log"),
        ("pidfile = /var/run/postgresql/pgbouncer.pid", f"pidfile = {tmp}/pgbouncer.pid"),
    ])
    assert "\npool_mode = transaction\n" in ini
    (tmp / "pgbouncer.ini").write_text(ini)
    if IS_ROOT:
        shutil.chown(tmp, "postgres", "postgres")
        for f in tmp.iterdir():
            shutil.chown(f, "postgres", "postgres")
    # PgBouncer refuses to run as root: -u drops to postgres (what Debian's unit does with User=postgres).
    cmd = [exe, *(["-u", "postgres"] if IS_ROOT else []), str(tmp / "pgbouncer.ini")]
    proc = Proc(cmd, tmp / "pgbouncer.out")
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.alive(), proc.tail() + (tmp / "pgbouncer.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "pgbouncer did not listen"
            time.sleep(0.1)
    try:
        yield Bouncer(port, names["db"], names["app"], proc)
    finally:
        proc.stop(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def run_psycopg(code: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-c", code, url], capture_output=True, text=True, timeout=120)


PREPARED = """
import sys, psycopg
threshold = {threshold}
a, b = (psycopg.connect(sys.argv[1], autocommit=True, prepare_threshold=threshold) for _ in range(2))
errors = 0
for i in range(30):
    for conn in (a, b):
        try:
            conn.execute("SELECT %s::int + 1", (i,)).fetchone()
        except psycopg.errors.Error as exc:
            errors += 1
            print(type(exc).__name__, exc)
print("errors", errors)
"""


def test_transaction_pooling_and_the_prepared_statement_trap(bouncer: Bouncer) -> None:
    bad = run_psycopg(PREPARED.format(threshold=0), bouncer.url())
    assert "errors 0" not in bad.stdout, "server-side prepared statements collide under transaction pooling"
    assert "prepared statement" in bad.stdout, bad.stdout + bad.stderr
    good = run_psycopg(PREPARED.format(threshold=None), bouncer.url())
    assert good.returncode == 0 and "errors 0" in good.stdout, good.stdout + good.stderr
    wrong = run_psycopg("import sys, psycopg; psycopg.connect(sys.argv[1])", bouncer.url(password="wrong"))
    assert wrong.returncode != 0 and "SASL authentication failed" in wrong.stderr, wrong.stderr


# --- the app through PgBouncer ----------------------------------------------------------------------------
def test_app_scenario_through_pgbouncer(bouncer: Bouncer, tmp_path: Path, procs: list[Proc]) -> None:
    require_app()
    c = serve(app_env(bouncer.url("postgresql+psycopg")), tmp_path, procs, workers=2)  # loanctl via PgBouncer too
    assert c.call("GET", "/health") == (200, {"status": "ok", "database": "ok"})

    steps = present_steps(c)
    assert {"create branch", "list branches", "create user"} <= {s[0] for s in steps}
    for name, method, path, body, expected in steps:
        status, answer = c.call(method, path, body() if body else None)
        assert status == expected, f"{name}: {status} {answer}"
    lend(c)  # money moves through PgBouncer as far as the app has the endpoints

    # Concurrency: every step many times over from 12 threads, spread over both workers' pools.
    def one(i: int) -> tuple[str, int, object]:
        name, method, path, body, expected = steps[i % len(steps)]
        status, answer = c.call(method, path, body() if body else None)
        return name, status if status == expected else -status, answer

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(240)))
    failures = [r for r in results if r[1] < 0]
    assert not failures, failures[:5]

    created = sum(1 for name, _, _ in results if name == "create branch") + 2  # + the scenario's + lend()'s
    n = psql("SELECT count(*) FROM branches", db=bouncer.db).stdout.strip()
    assert int(n) == created, "every branch created through PgBouncer is in the database"
    log = procs[-1].tail(200_000) + (tmp_path / "error.log").read_text()
    assert "prepared statement" not in log and "Traceback" not in log, log[-3000:]
