"""Supervisor program, systemd units, logrotate and crontab: each checked by the program that reads it —
supervisord actually runs the app from the shipped program section, `systemd-analyze verify` accepts the units,
`logrotate -d` accepts the rotation and a forced rotation makes a live gunicorn reopen its log, and every
crontab line is a valid schedule calling a script that exists."""

from __future__ import annotations

import configparser
import getpass
import grp
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.kit import (
    DEPLOY,
    GUNICORN,
    REPO,
    Proc,
    app_env,
    apt_install,
    free_port,
    gunicorn_env,
    http,
    loanctl,
    require_app,
    substitute,
    unavailable,
    wait_http,
)

pytestmark = pytest.mark.deploy

HERE = Path(__file__).parent
APP_DIR = "/home/loanapp/loan-backend"


# --- supervisor -------------------------------------------------------------------------------------------
def program_section() -> configparser.SectionProxy:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(DEPLOY / "supervisor" / "loan-backend.conf")
    return parser["program:loan-backend"]


def test_supervisor_program_parses() -> None:
    p = program_section()
    assert p["command"] == (f"{APP_DIR}/.venv/bin/gunicorn -c {APP_DIR}/deploy/gunicorn_config.py app.main:app")
    assert p["directory"] == APP_DIR and p["user"] == "loanapp"
    assert p["stopsignal"] == "TERM" and p["stopasgroup"] == "true" and p["killasgroup"] == "true"
    env = dict(kv.split("=", 1) for kv in re.split(r",(?=[A-Z_]+=)", p["environment"]))
    assert env["PATH"].startswith(f'"{APP_DIR}/.venv/bin:') and ":/usr/bin:" in env["PATH"]
    assert "PROMETHEUS_MULTIPROC_DIR" in env


def test_supervisord_runs_the_app_from_the_shipped_program(tmp_path: Path) -> None:
    require_app()
    apt_install("supervisor")
    (tmp_path / "logs").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "conf.d").mkdir()
    program = substitute((DEPLOY / "supervisor" / "loan-backend.conf").read_text(), [
        ("/home/loanapp/loan-backend", str(REPO)),
        ("/home/loanapp/logs", str(tmp_path / "logs")),
        ("/home/loanapp/run", str(tmp_path / "run")),
        ("user=loanapp", f"user={getpass.getuser()}"),
    ])
    (tmp_path / "conf.d" / "loan-backend.conf").write_text(program)
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""[unix_http_server]
file={sock}
chmod=0700
[supervisord]
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
childlogdir={tmp_path}
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{sock}
[include]
files = {tmp_path}/conf.d/*.conf
""")
    port = free_port()
    env = {**app_env(f"sqlite:///{tmp_path}/loans.db"), **gunicorn_env(tmp_path, port, GUNICORN_WORKERS="2")}
    for k in ("GUNICORN_ACCESSLOG", "GUNICORN_ERRORLOG", "GUNICORN_PIDFILE"):
        del env[k]  # the shipped defaults, rewritten to tmp only through /home/loanapp/… below
    env.update(GUNICORN_ACCESSLOG=str(tmp_path / "logs/access.log"), GUNICORN_ERRORLOG=str(tmp_path / "logs/error.log"),
               GUNICORN_PIDFILE=str(tmp_path / "run/loan-backend.pid"))
    loanctl(env, "init-db")
    ctl = ["supervisorctl", "-c", str(conf)]
    sup = Proc(["supervisord", "-c", str(conf)], tmp_path / "supervisord.out", env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", sup)
        deadline = time.monotonic() + 30
        while "RUNNING" not in (status := subprocess.run([*ctl, "status", "loan-backend"], capture_output=True,
                                                         text=True).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert (tmp_path / "run" / "prometheus").is_dir(), "PROMETHEUS_MULTIPROC_DIR reached gunicorn"
        master = int((tmp_path / "run" / "loan-backend.pid").read_text())
        r = subprocess.run([*ctl, "signal", "HUP", "loan-backend"], capture_output=True, text=True)
        assert "signalled" in r.stdout, r.stdout + r.stderr
        assert http("GET", f"http://127.0.0.1:{port}/health")[0] == 200
        r = subprocess.run([*ctl, "stop", "loan-backend"], capture_output=True, text=True, timeout=60)
        assert "stopped" in r.stdout, r.stdout + r.stderr
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", f"{tmp_path}"], capture_output=True, text=True).stdout.split()
        assert str(master) not in left, "the gunicorn master is gone"
        assert not [p for p in left if p != str(sup.pid)], f"no orphaned workers: {left}"
        assert "Shutting down" in (tmp_path / "logs" / "error.log").read_text()
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, text=True, timeout=60)
        sup.stop(timeout=30)


def events_program() -> configparser.SectionProxy:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(DEPLOY / "supervisor" / "loan-events.conf")
    return parser["program:loan-events"]


def test_supervisor_events_program_parses() -> None:
    p = events_program()
    assert p["command"] == f"{APP_DIR}/.venv/bin/python -m app.cli deliver-events"
    assert p["directory"] == APP_DIR and p["user"] == "loanapp"
    assert p["stopsignal"] == "TERM" and p["stopasgroup"] == "true" and p["killasgroup"] == "true"
    assert int(p["stopwaitsecs"]) >= 15


def test_supervisord_runs_the_events_worker_and_stops_it_gracefully(tmp_path: Path) -> None:
    """The shipped program runs `loanctl deliver-events`; `supervisorctl stop` (TERM) ends it with exit 0."""
    require_app()
    apt_install("supervisor")
    for d in ("logs", "run", "conf.d"):
        (tmp_path / d).mkdir()
    program = substitute((DEPLOY / "supervisor" / "loan-events.conf").read_text(), [
        ("/home/loanapp/loan-backend", str(REPO)),
        ("/home/loanapp/logs", str(tmp_path / "logs")),
        ("user=loanapp", f"user={getpass.getuser()}"),
    ])
    (tmp_path / "conf.d" / "loan-events.conf").write_text(program)
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""[unix_http_server]
file={sock}
chmod=0700
[supervisord]
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
childlogdir={tmp_path}
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{sock}
[include]
files = {tmp_path}/conf.d/*.conf
""")
    env = app_env(f"sqlite:///{tmp_path}/loans.db", WORKER_POLL_SECONDS="0.2", LOG_FORMAT="json")
    loanctl(env, "init-db")
    ctl = ["supervisorctl", "-c", str(conf)]
    sup = Proc(["supervisord", "-c", str(conf)], tmp_path / "supervisord.out", env=env)
    try:
        deadline = time.monotonic() + 40
        while "RUNNING" not in (status := subprocess.run([*ctl, "status", "loan-events"], capture_output=True,
                                                         text=True).stdout):
            assert time.monotonic() < deadline and sup.alive(), status
            time.sleep(0.5)
        r = subprocess.run([*ctl, "stop", "loan-events"], capture_output=True, text=True, timeout=60)
        assert "stopped" in r.stdout, r.stdout + r.stderr
        log = (tmp_path / "supervisord.log").read_text()
        assert "exited: loan-events (exit status 0" in log or "stopped: loan-events (exit status 0" in log, log
        assert "delivered 0 webhook attempts" in (tmp_path / "logs" / "events.log").read_text()
    finally:
        subprocess.run([*ctl, "shutdown"], capture_output=True, text=True, timeout=60)
        sup.stop(timeout=30)


# --- systemd ----------------------------------------------------------------------------------------------
def test_systemd_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        apt_install("systemd")
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} == {
        "loan-backend.service", "loan-close-day.service", "loan-close-day.timer", "loan-events.service"
    }
    for unit in units:  # ExecStart must exist to verify: point the app directory at this checkout
        (tmp_path / unit.name).write_text(unit.read_text().replace(APP_DIR, str(REPO)))
    r = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.iterdir()))], capture_output=True,
                       text=True)
    if r.returncode != 0 and "Failed to" in r.stderr and "bus" in r.stderr.lower():
        unavailable(f"systemd-analyze verify cannot run here: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr
    problems = [line for line in r.stderr.splitlines() if "loan-" in line and "Documentation" not in line]
    assert not problems, problems

    service = (DEPLOY / "systemd" / "loan-close-day.service").read_text()
    assert f"ExecStart={APP_DIR}/.venv/bin/python -m app.cli close-day" in service
    timer = (DEPLOY / "systemd" / "loan-close-day.timer").read_text()
    cal = re.search(r"^OnCalendar=(.+)$", timer, re.M).group(1)
    r = subprocess.run(["systemd-analyze", "calendar", cal], capture_output=True, text=True)
    assert r.returncode == 0 and "00:05:00 UTC" in r.stdout, r.stdout + r.stderr
    main = (DEPLOY / "systemd" / "loan-backend.service").read_text()
    assert "Type=notify" in main and "ExecReload=/bin/kill -s HUP $MAINPID" in main
    events = (DEPLOY / "systemd" / "loan-events.service").read_text()
    assert f"ExecStart={APP_DIR}/.venv/bin/python -m app.cli deliver-events" in events
    assert "KillSignal=SIGTERM" in events and "Restart=always" in events


# --- logrotate --------------------------------------------------------------------------------------------
def rotation_conf(tmp: Path) -> str:
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    return substitute((DEPLOY / "logrotate" / "loan-backend").read_text(), [
        ("/home/loanapp/logs", str(tmp / "logs")),
        ("/home/loanapp/run", str(tmp / "run")),
        ("su loanapp loanapp", f"su {user} {group}"),
        ("create 0640 loanapp loanapp", f"create 0640 {user} {group}"),
    ])


def test_logrotate_dry_run_accepts_the_shipped_file(tmp_path: Path) -> None:
    apt_install("logrotate")
    conf = tmp_path / "loan-backend"
    conf.write_text(rotation_conf(tmp_path))
    conf.chmod(0o644)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "access.log").write_text("x\n")
    r = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(conf)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error:" not in (r.stdout + r.stderr), r.stdout + r.stderr
    assert "rotating pattern" in (r.stdout + r.stderr)


def test_forced_rotation_makes_gunicorn_reopen_its_logs(tmp_path: Path, procs: list[Proc]) -> None:
    apt_install("logrotate")
    (tmp_path / "logs").mkdir()
    (tmp_path / "run").mkdir()
    port = free_port()
    env = gunicorn_env(tmp_path, port)
    env.update(GUNICORN_ACCESSLOG=str(tmp_path / "logs/access.log"), GUNICORN_ERRORLOG=str(tmp_path / "logs/error.log"),
               GUNICORN_PIDFILE=str(tmp_path / "run/loan-backend.pid"))
    g = Proc([GUNICORN, "-c", str(DEPLOY / "gunicorn_config.py"), "--chdir", str(HERE), "echo_app:app"],
             tmp_path / "gunicorn.out", env=env)
    procs.append(g)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/before", g)
    conf = tmp_path / "loan-backend"
    conf.write_text(rotation_conf(tmp_path))
    conf.chmod(0o644)
    (tmp_path / "logs").chmod(0o755)
    r = subprocess.run(["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    rotated = tmp_path / "logs" / "access.log.1"
    assert rotated.exists() and "/before" in rotated.read_text()
    # USR1 is handled asynchronously: the first requests may still land in the rotated file (which is why
    # delaycompress leaves it uncompressed for a day); soon every request goes to the new one.
    marker = ""
    for i in range(50):
        marker = f"/after-{i}"
        http("GET", base + marker)
        time.sleep(0.1)
        if marker in (tmp_path / "logs" / "access.log").read_text():
            break
    assert marker in (tmp_path / "logs" / "access.log").read_text(), "gunicorn writes to the new file"
    assert marker not in rotated.read_text()
    assert g.alive(), "rotation does not restart the server"
    assert json.loads(http("GET", f"{base}/x")[2])["path"] == "/x"
    g.stop(signal.SIGTERM)


# --- cron -------------------------------------------------------------------------------------------------
FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"


def test_crontab_lines_are_valid_and_call_shipped_scripts() -> None:
    text = (DEPLOY / "backup" / "crontab").read_text()
    jobs = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=\S*$", line):
            continue
        parts = line.split(None, 5)
        assert len(parts) == 6 and all(re.fullmatch(FIELD, f) for f in parts[:5]), f"bad cron line: {line}"
        jobs.append(parts[5])
    assert any("deploy/backup/backup.sh" in j for j in jobs)
    assert any("-m app.cli close-day" in j for j in jobs)
    for job in jobs:
        assert ">>" in job and "2>&1" in job, f"every job logs its output: {job}"
        for path in re.findall(rf"{APP_DIR}/(\S+)", job):
            local = REPO / path
            if path.startswith("deploy/"):
                assert local.exists() and os.access(local, os.X_OK), f"{path} is shipped and executable"
    assert "CRON_TZ=UTC" in text
