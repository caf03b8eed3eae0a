"""Helpers and fixtures for the deployment-kit checks (`deploy/check.sh`, `make deploy-check`).

These checks exercise the files in deploy/ against the real programs they are written for: Debian's nginx,
PgBouncer, supervisor, logrotate, systemd-analyze, and the PostgreSQL 15 server on 127.0.0.1:5432.
Missing Debian packages are installed here (apt-get). Where apt is unreachable the check is skipped with the
reason, except under CI=true, where anything missing is a failure.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
GUNICORN = str(VENV_BIN / "gunicorn") if (VENV_BIN / "gunicorn").exists() else shutil.which("gunicorn") or "gunicorn"
PG_HOST = os.environ.get("DEPLOY_CHECK_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("DEPLOY_CHECK_PGPORT", "5432")
PG_SUPERUSER = os.environ.get("DEPLOY_CHECK_PGUSER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
IS_ROOT = os.geteuid() == 0


def unavailable(reason: str) -> None:
    """Skip outside CI; under CI=true a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


# --- Debian packages ------------------------------------------------------------------------------------------
def _installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


_apt_updated = False


def apt_install(*pkgs: str) -> None:
    """Install Debian packages that are missing (`apt-get install -y --no-install-recommends`)."""
    global _apt_updated
    missing = [p for p in pkgs if not _installed(p)]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        unavailable(f"Debian packages {missing} are missing and there is no apt-get here")
    if not IS_ROOT:
        unavailable(f"Debian packages {missing} are missing and installing them needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Wait for a concurrent apt/dpkg (another check, unattended-upgrades) instead of failing on its lock.
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "--no-install-recommends", *missing]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0 and not _apt_updated:
        _apt_updated = True
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env, timeout=900)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        unavailable(f"apt-get could not install {missing} (apt unreachable?): {(r.stdout + r.stderr)[-600:]}")


# --- processes ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL's and PgBouncer's tools refuse to run as root: run them as `postgres` when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


class Proc:
    """A background process started by a check, in its own session so stop() ends it and its children only."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.cmd, self.log = cmd, log
        with open(log, "ab") as out:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(cmd, cwd=cwd or REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes appended here are stopped at the end of the test, whatever happened."""
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_http(url: str, proc: Proc, timeout: float = 60, want: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(f"{proc.cmd[0]} exited with {proc.popen.returncode} before serving {url}:\n{proc.tail()}")
        try:
            status, _, _ = http("GET", url, timeout=5)
            if status == want:
                return
            last = status
        except OSError as e:
            last = e
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer {want} within {timeout:.0f} s (last: {last}):\n{proc.tail()}")


def gunicorn_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment that points deploy/gunicorn_config.py at a throwaway port, log and pid location."""
    env = dict(os.environ)
    for k in list(env):  # the checks decide the app's configuration, not the caller's shell
        if k.startswith(("GUNICORN_", "DATABASE_", "PROMETHEUS_")):
            del env[k]
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_ACCESSLOG=str(tmp / "access.log"),
               GUNICORN_ERRORLOG=str(tmp / "error.log"), GUNICORN_PIDFILE=str(tmp / "gunicorn.pid"),
               GUNICORN_WORKERS="1")
    env.update(extra)
    return env


def substitute(text: str, replacements: list[tuple[str, str]]) -> str:
    """Rewrite a shipped config for a throwaway location; every pattern must occur, so a changed file cannot
    make the check quietly test something else."""
    for old, new in replacements:
        assert old in text, f"expected {old!r} in the shipped file"
        text = text.replace(old, new)
    return text


# --- the application ------------------------------------------------------------------------------------------
def app_ready() -> bool:
    return (REPO / "app" / "main.py").exists() and (REPO / "app" / "cli.py").exists()


def require_app() -> None:
    if not app_ready():
        pytest.skip("app/main.py and app/cli.py are not in this checkout yet")


APP_SECRET = "deploy-check-" + "s" * 64


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("GUNICORN_", "DATABASE_", "PROMETHEUS_")):
            del env[k]
    env.update(DATABASE_URL=database_url, SECRET_KEY=APP_SECRET, ENV="development", DEBUG="false",
               LOG_LEVEL="WARNING", RATE_LIMIT_PER_MINUTE="100000")
    env.update(extra)
    return env


def loanctl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([PYTHON, "-m", "app.cli", *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    if check and r.returncode != 0:
        pytest.fail(f"loanctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}")
    return r


# --- PostgreSQL -----------------------------------------------------------------------------------------------
def pg_url(db: str, user: str = PG_SUPERUSER, driver: str = "postgresql", port: str | int = PG_PORT,
           password: str | None = None) -> str:
    auth = f"{user}:{password}" if password else user
    return f"{driver}://{auth}@{PG_HOST}:{port}/{db}"


def psql(sql: str, db: str = "postgres", user: str = PG_SUPERUSER, check: bool = True,
         variables: dict[str, str] | None = None, file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run SQL (or a file) with psql, ON_ERROR_STOP, unaligned tuples-only output."""
    cmd = ["psql", "-X", "-h", PG_HOST, "-p", str(PG_PORT), "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1",
           "-Atq"]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    cmd += ["-f", str(file)] if file else ["-c", sql]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        pytest.fail(f"psql as {user} on {db} failed: {r.stderr[-2000:]}\nSQL: {sql or file}")
    return r


@functools.cache
def _pg_reachable() -> str | None:
    if shutil.which("psql") is None:
        return "psql is not installed"
    r = subprocess.run(["psql", "-X", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_SUPERUSER, "-d", "postgres",
                        "-Atc", "SHOW server_version_num"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_SUPERUSER}: {r.stderr.strip()}"
    return None


def require_pg() -> None:
    reason = _pg_reachable()
    if reason:
        unavailable(reason)


def pg_server_major() -> int:
    require_pg()
    return int(psql("SHOW server_version_num").stdout.strip()) // 10000


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def drop_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


def drop_roles(*roles: str) -> None:
    for role in roles:
        psql(f'DROP ROLE IF EXISTS "{role}"', check=False)


@pytest.fixture
def throwaway_db() -> Iterator[str]:
    """An empty database on the machine's PostgreSQL, dropped afterwards."""
    require_pg()
    name = unique("deploy_check")
    psql(f'CREATE DATABASE "{name}"')
    yield name
    drop_database(name)


@pytest.fixture
def prod_roles() -> Iterator[dict[str, str]]:
    """Names for the production role layout (deploy/postgres/roles.sql), unique per run, dropped afterwards."""
    require_pg()
    tag = uuid.uuid4().hex[:8]
    names = {"db": f"loan_db_{tag}", "owner": f"loan_owner_{tag}", "app": f"loan_app_{tag}",
             "backup": f"loan_backup_{tag}"}
    yield names
    drop_database(names["db"])
    drop_roles(names["app"], names["backup"], names["owner"])


def create_prod_database(names: dict[str, str]) -> None:
    """deploy/postgres/roles.sql, exactly as docs/DEPLOY.md runs it (as the postgres superuser)."""
    psql("", variables={k: v for k, v in names.items()}, file=DEPLOY / "postgres" / "roles.sql")


def apply_grants(names: dict[str, str], **variables: str) -> None:
    """deploy/postgres/grants.sql, as the migration role (what docs/DEPLOY.md does after every migration)."""
    psql("", db=names["db"], user=names["owner"], variables={"app": names["app"], **variables},
         file=DEPLOY / "postgres" / "grants.sql")


def table_counts(db: str) -> dict[str, int]:
    """Exact row count of every table in schema public."""
    tables = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", db=db).stdout.split()
    if not tables:
        return {}
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.\"{t}\"" for t in tables)
    rows = psql(sql, db=db).stdout.splitlines()
    return {name: int(n) for name, n in (row.split("|") for row in rows)}


def json_of(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
