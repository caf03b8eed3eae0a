"""deploy/gunicorn_config.py: passes `gunicorn --check-config`, agrees with supervisor/systemd/nginx on timeouts,
and serves the real app (`app.main:app`) with uvicorn workers: /health and /metrics on a fresh SQLite database,
graceful reload (HUP), log reopening (USR1) and graceful stop (TERM)."""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import subprocess
import time
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.deploy.kit import (
    DEPLOY,
    GUNICORN,
    PYTHON,
    REPO,
    Proc,
    app_env,
    free_port,
    gunicorn_env,
    http,
    loanctl,
    require_app,
    wait_http,
)

pytestmark = pytest.mark.deploy

CONFIG = DEPLOY / "gunicorn_config.py"
HERE = Path(__file__).parent


def load_config(**env: str) -> dict[str, object]:
    code = ("import json, runpy; c = runpy.run_path('deploy/gunicorn_config.py'); "
            "print(json.dumps({k: v for k, v in c.items() if isinstance(v, (int, str, bool, type(None)))}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    r = subprocess.run([PYTHON, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def test_settings_and_their_neighbours_agree() -> None:
    c = load_config()
    assert c["worker_class"] == "uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornWorker is deprecated"
    assert c["bind"] == "127.0.0.1:8000"
    assert c["forwarded_allow_ips"] == "127.0.0.1"
    assert c["workers"] == min(2 * os.cpu_count() + 1, 8)
    assert load_config(GUNICORN_WORKERS="3")["workers"] == 3
    assert c["preload_app"] is False and c["daemon"] is False
    assert c["reuse_port"] is True, "one SO_REUSEPORT socket per worker: the kernel spreads connections evenly"
    assert c["max_requests"] > 0 and 0 < c["max_requests_jitter"] < c["max_requests"]
    assert "user" not in c and "group" not in c, "supervisor/systemd drop privileges, gunicorn must not try"
    # Every setting has its one-line reason.
    lines = CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[i - 1].lstrip().startswith("#") or "#" in line, f"no reason given for: {line}"

    graceful = int(c["graceful_timeout"])
    sup = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    sup.read(DEPLOY / "supervisor" / "loan-backend.conf")
    assert int(sup["program:loan-backend"]["stopwaitsecs"]) > graceful
    unit = (DEPLOY / "systemd" / "loan-backend.service").read_text()
    assert int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1)) > graceful
    site = (DEPLOY / "nginx" / "sites-available" / "loan-backend").read_text()
    nginx_keepalive = int(re.search(r"keepalive_timeout (\d+)s;", site).group(1))
    assert int(c["keepalive"]) > nginx_keepalive, "gunicorn must not close connections nginx is about to reuse"
    assert int(c["timeout"]) <= int(re.search(r"proxy_read_timeout (\d+)s;", site).group(1))
    assert re.search(r"server 127\.0\.0\.1:8000 ", site), "nginx's upstream is gunicorn's bind"


def test_check_config_with_a_stand_in_app(tmp_path: Path) -> None:
    """The config file itself (no dependency on the app being importable)."""
    r = subprocess.run([GUNICORN, "--check-config", "-c", str(CONFIG), "--chdir", str(HERE), "echo_app:app"],
                       cwd=REPO, env=gunicorn_env(tmp_path, free_port()), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_config_with_the_app(tmp_path: Path) -> None:
    require_app()
    env = {**gunicorn_env(tmp_path, free_port()), **app_env(f"sqlite:///{tmp_path}/loans.db")}
    r = subprocess.run([GUNICORN, "--check-config", "-c", str(CONFIG), "app.main:app"], cwd=REPO, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def workers_of(master: int) -> set[int]:
    r = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True)
    return {int(p) for p in r.stdout.split()}


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_connections_are_spread_evenly_over_the_workers(tmp_path: Path, procs: list[Proc]) -> None:
    """nginx opens its keep-alive upstream connections in a burst. On one shared socket the first worker to
    wake accepts the whole burst (asyncio accepts in a loop), so one worker serves everything; with reuse_port
    each worker accepts on its own socket and the kernel hashes new connections over them."""
    port = free_port()
    g = Proc([GUNICORN, "-c", str(CONFIG), "--chdir", str(HERE), "echo_app:app"], tmp_path / "gunicorn.out",
             env=gunicorn_env(tmp_path, port, GUNICORN_WORKERS="2"))
    procs.append(g)
    wait_http(f"http://127.0.0.1:{port}/ping", g)
    master = int((tmp_path / "gunicorn.pid").read_text())
    wait_for(lambda: len(workers_of(master)) == 2, 30, "two workers")
    workers = workers_of(master)

    def burst(n: int) -> list[int]:
        """Open n connections at once, then ask each which worker holds it."""
        conns = [HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(n)]
        try:
            for c in conns:
                c.connect()
            pids = []
            for c in conns:
                c.request("GET", "/who")
                pids.append(int(json.loads(c.getresponse().read())["pid"]))
            return pids
        finally:
            for c in conns:
                c.close()

    # A worker listens once it has booted: wait until both have answered.
    wait_for(lambda: set(burst(16)) == workers, 30, "both workers accepting")
    pids = burst(64)
    counts = {pid: pids.count(pid) for pid in workers}
    # Binomial(64, 1/2): fewer than 16 on either side has a probability of about 1e-5.
    assert min(counts.values()) >= 16, counts


def test_app_boots_under_gunicorn_and_reloads_gracefully(tmp_path: Path, procs: list[Proc]) -> None:
    require_app()
    port = free_port()
    prom = tmp_path / "prometheus"
    prom.mkdir()
    (prom / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    env = {**app_env(f"sqlite:///{tmp_path}/loans.db"),
           **gunicorn_env(tmp_path, port, GUNICORN_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(prom))}
    loanctl(env, "init-db")
    g = Proc([GUNICORN, "-c", str(CONFIG), "app.main:app"], tmp_path / "gunicorn.out", env=env)
    procs.append(g)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", g)

    status, _, body = http("GET", f"{base}/health")
    assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
    status, headers, body = http("GET", f"{base}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain"), headers
    assert not (prom / "counter_999999.db").exists(), "on_starting wiped the stale multiprocess files"

    master = int((tmp_path / "gunicorn.pid").read_text())
    assert master == g.pid
    wait_for(lambda: len(workers_of(master)) == 2, 30, "two workers")

    # HUP: new workers, old ones retired, and the service never stops answering.
    before = workers_of(master)
    os.kill(master, signal.SIGHUP)
    wait_for(lambda: not (workers_of(master) & before) and len(workers_of(master)) == 2, 60, "workers replaced")
    for _ in range(20):
        assert http("GET", f"{base}/health")[0] == 200

    # USR1 (what logrotate's postrotate sends): the access log is reopened under its old name.
    access = tmp_path / "access.log"
    wait_for(lambda: access.exists() and "/health" in access.read_text(), 10, "requests in the access log")
    access.rename(tmp_path / "access.log.1")
    os.kill(master, signal.SIGUSR1)
    wait_for(lambda: access.exists(), 10, "access.log reopened after USR1")
    # Workers reopen asynchronously after the master: soon every request lands in the new file.
    marker = ""
    for i in range(50):
        marker = f"after-rotation-{i}"
        http("GET", f"{base}/health?{marker}")
        time.sleep(0.1)
        if marker in access.read_text():
            break
    assert marker in access.read_text(), "new requests go to the new file"
    assert marker not in (tmp_path / "access.log.1").read_text()

    # TERM: graceful stop, exit status 0.
    assert g.stop(signal.SIGTERM, timeout=40) == 0, g.tail()
    errors = (tmp_path / "error.log").read_text()
    assert "[ERROR]" not in errors and "Traceback" not in errors, errors[-3000:]
    assert "Booting worker" in errors and "Shutting down" in errors
