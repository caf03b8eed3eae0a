"""Gunicorn settings for the loan backend (production shape: gunicorn master + uvicorn workers).

Start:   .venv/bin/gunicorn -c deploy/gunicorn_config.py app.main:app
Check:   .venv/bin/gunicorn --check-config -c deploy/gunicorn_config.py app.main:app
Reload:  kill -HUP <master pid>   (new workers with the new code, old ones finish their requests)
Reopen logs after rotation: kill -USR1 <master pid>   (what deploy/logrotate/loan-backend does)

Every value can be overridden from the environment (GUNICORN_*), which is how supervisor/systemd units and the
tests in tests/deploy/ point it somewhere else. The app's own settings come from `.env` (see .env.example).
"""

import multiprocessing
import os
import shutil


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# --- socket -------------------------------------------------------------------------------------------------
# Loopback only: nginx is the one client; the port is never exposed (UFW also blocks it).
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Connections the kernel queues while all workers are busy; beyond that nginx gets refused and retries/502s fast.
backlog = 2048
# Each worker gets its own SO_REUSEPORT socket and the kernel spreads new connections over them evenly: on one
# shared socket the worker that woke last tends to accept again, so nginx's few long-lived keep-alive upstream
# connections can all land on one worker while the others idle (bench/bench_servicing.py prints the split).
reuse_port = True

# --- workers ------------------------------------------------------------------------------------------------
# The replacement for the deprecated uvicorn.workers.UvicornWorker (package `uvicorn-worker`).
worker_class = "uvicorn_worker.UvicornWorker"
# 2 × CPU + 1 is the classic starting point; capped because every worker holds its own DB pool
# (workers × DATABASE_POOL_SIZE must stay under PgBouncer's max_client_conn).
workers = _env_int("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, _env_int("GUNICORN_MAX_WORKERS", 8)))
# Load the app in each worker, not in the master: no DB connections or Prometheus state shared across fork,
# and `kill -HUP` picks up new code.
preload_app = False
# Heartbeat file on tmpfs so a slow disk can never make the master think a healthy worker hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# --- timeouts and restarts ----------------------------------------------------------------------------------
# A worker silent for this long (event loop blocked) is killed and replaced; above nginx's proxy_read_timeout
# would be pointless, so keep it at or below 60 s.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
# On HUP/TERM, in-flight requests get this long to finish; supervisor's stopwaitsecs / systemd's TimeoutStopSec
# are set above it so a graceful stop is never cut short.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than nginx's upstream keepalive_timeout (60 s) so gunicorn never closes a connection nginx is about to
# reuse (that race shows up as sporadic 502s).
keepalive = 75
# Recycle workers now and then so a slow leak never becomes an outage...
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 2000)
# ...at staggered moments, so the workers never all restart together.
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 200)

# --- proxy --------------------------------------------------------------------------------------------------
# Trust X-Forwarded-For/-Proto only from nginx on this host: uvicorn then reports the real client IP and https
# scheme to the app, and a client talking to gunicorn directly cannot spoof its address.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- logging ------------------------------------------------------------------------------------------------
# Files (rotated by deploy/logrotate/loan-backend, reopened on USR1); "-" sends them to stdout/stderr instead.
# Access lines carry the real client IP (see forwarded_allow_ips), uvicorn's format.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "/home/loanapp/logs/access.log")
# Start-up, worker lifecycle (boot, timeout, restart) and tracebacks.
errorlog = os.environ.get("GUNICORN_ERRORLOG", "/home/loanapp/logs/error.log")
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")  # worker boots/exits are worth seeing at info
# The app's own JSON log (structlog, on stderr) stays on stderr: supervisor files it in logs/app.log and
# systemd in the journal, apart from gunicorn's error log.
capture_output = False
# Name shown by ps/top, and what operators grep for.
proc_name = "loan-backend"
# The master's pid, for `kill -HUP` (reload) and `kill -USR1` (logrotate); supervisor/systemd still own the process.
pidfile = os.environ.get("GUNICORN_PIDFILE", "/home/loanapp/run/loan-backend.pid")
# Never daemonize: supervisor or systemd supervise the foreground master.
daemon = False
# No user/group here: supervisor (user=) and systemd (User=) start gunicorn as loanapp already.


# --- Prometheus multiprocess mode ---------------------------------------------------------------------------
# With several workers each process keeps its own metrics; prometheus_client merges them from files in
# PROMETHEUS_MULTIPROC_DIR. It must be set in the process environment (supervisor/systemd), be empty at start
# (stale files from a previous run would be summed in) and dead workers must be marked.
def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, mode=0o700, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            from prometheus_client import multiprocess
        except ImportError:
            return
        multiprocess.mark_process_dead(worker.pid)
