"""Close of business at scale: seeds BENCH_COB_LOANS (default 1,000,000) active loans on PostgreSQL
(set-based, bench/cob_seed.py), then closes one business day with `loanctl close-day` in a subprocess for each
workers × chunk-size pair of BENCH_COB_RUNS (default "1x5000,1x20000,2x5000,2x20000"), each on a fresh
copy of the seeded database, measuring wall time and the peak RSS of the process tree. In the same run, on
another fresh copy, the raw set-based baseline: one INSERT … SELECT of two journal lines per loan and one
UPDATE accruing interest on every loan. BENCH_COB_PROFILE=1 (default) adds an in-process run that times every
SQL statement of the close. Then BENCH_COB_SQLITE_LOANS (default 100,000) loans on SQLite, workers=1.

Prints numbers, asserts nothing. Targets from the issue: ≤ 60 s for 1M loans, ≤ 1.5 × the raw baseline,
≤ 300 MB RSS. BENCH_COB_CLUSTER=own (the default unless BENCH_PG_URL is set) runs everything on a throwaway
PostgreSQL cluster the bench starts itself (initdb as `postgres` when run as root, a free port, its data under
BENCH_COB_PGDATA_DIR or the temp dir) with the deploy kit's tuning (deploy/postgres/postgresql.conf.d/
loan-backend.conf, minus preloads whose library is not installed), prints the settings that matter, and
stops and removes it at the end (also on SIGTERM). BENCH_COB_CLUSTER=url uses the server BENCH_PG_URL names
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres); every database the bench creates is called
bench_cob_<pid>_* and dropped at the end. Per run the bench prints the WAL written and the loans rows updated
(HOT or not); BENCH_COB_EXPLAIN=1 adds EXPLAIN (ANALYZE, BUFFERS) of every statement of one chunk (auto_explain,
in the profile run).
The close runs with the caller's environment, so e.g. PGOPTIONS="-c jit=off" reaches its sessions: JIT
compilation (on by default in PostgreSQL 15) costs a few hundred ms per chunk statement here."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import cob_seed
import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.database import Database, init_db

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLUSTER = os.environ.get("BENCH_COB_CLUSTER", "url" if "BENCH_PG_URL" in os.environ else "own")
DEPLOY_CONF = ROOT / "deploy" / "postgres" / "postgresql.conf.d" / "loan-backend.conf"
EXPLAIN = os.environ.get("BENCH_COB_EXPLAIN", "0") == "1"
SETTINGS_SHOWN = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "wal_buffers",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "jit",
    "random_page_cost",
    "huge_pages",
    "shared_preload_libraries",
    "max_connections",
    "autovacuum",
)
LOANS = int(os.environ.get("BENCH_COB_LOANS", "1000000"))
SQLITE_LOANS = int(os.environ.get("BENCH_COB_SQLITE_LOANS", "100000"))
RUNS = os.environ.get("BENCH_COB_RUNS", "1x5000,1x20000,2x5000,2x20000")
PROFILE = os.environ.get("BENCH_COB_PROFILE", "1") == "1"
TAG = f"bench_cob_{os.getpid()}"
TARGET_SECONDS_PER_MILLION, TARGET_RATIO, TARGET_RSS_MB = 60.0, 1.5, 300


# --- a throwaway cluster with the deploy kit's tuning ----------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL's tools refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found is None:
        raise SystemExit("bench_cob: no initdb found; set BENCH_COB_CLUSTER=url and BENCH_PG_URL")
    return Path(found).resolve().parent


def deploy_conf(pkglibdir: Path) -> tuple[str, list[str]]:
    """The deploy kit's conf file, minus shared_preload_libraries entries whose library is not installed (and
    the settings of those libraries). Returns (text, what was dropped)."""
    dropped: list[str] = []
    kept_lines = []
    missing: set[str] = set()
    for line in DEPLOY_CONF.read_text().splitlines():
        match = re.match(r"\s*shared_preload_libraries\s*=\s*'([^']*)'", line)
        if match:
            libs = [x.strip() for x in match[1].split(",") if x.strip()]
            have = [x for x in libs if (pkglibdir / f"{x}.so").exists()]
            missing |= set(libs) - set(have)
            dropped += [f"shared_preload_libraries {x} (not installed)" for x in libs if x not in have]
            kept_lines.append(f"shared_preload_libraries = '{','.join(have)}'")
        else:
            kept_lines.append(line)
    text = "\n".join(
        line if not any(re.match(rf"\s*{re.escape(lib)}\.", line) for lib in missing) else f"# dropped: {line}"
        for line in kept_lines
    )
    return text + "\n", dropped


class OwnCluster:
    """initdb + pg_ctl start on a free port; stop() stops it and removes its files."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        base = os.environ.get("BENCH_COB_PGDATA_DIR") or None
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-cob-pg-", dir=base))
        self.data = self.workdir / "data"
        self.port = _free_port()
        self.started = False

    def _run(self, *args: str) -> str:
        r = subprocess.run(_as_postgres(list(args)), check=False, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit(f"bench_cob: {args[0]} failed ({r.returncode}): {r.stdout[-1500:]}{r.stderr[-2500:]}")
        return r.stdout

    def start(self) -> str:
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self.workdir.chmod(0o755)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pkglibdir = (
            Path(self._run(str(self.bindir / "pg_config"), "--pkglibdir").strip())
            if (self.bindir / "pg_config").exists()
            else self.bindir.parent / "lib"
        )
        conf, dropped = deploy_conf(pkglibdir)
        conf_d = self.workdir / "conf.d"
        conf_d.mkdir()
        (conf_d / DEPLOY_CONF.name).write_text(conf)
        # Only what a throwaway cluster on a shared machine must change: its own port, address and socket.
        (self.workdir / "overrides.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.workdir}'\n"
        )
        with open(self.data / "postgresql.conf", "a") as fh:  # as root: the file stays postgres's
            fh.write(f"include_dir = '{conf_d}'\ninclude = '{self.workdir}/overrides.conf'\n")
        if os.geteuid() == 0:
            for path in (conf_d, conf_d / DEPLOY_CONF.name, self.workdir / "overrides.conf"):
                shutil.chown(path, "postgres", "postgres")
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.workdir / "server.log"),
            "-w",
            "-t",
            "120",
            "start",
        )
        self.started = True
        if dropped:
            print("  own cluster: dropped " + "; ".join(dropped), flush=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                check=False,
                capture_output=True,
                timeout=120,
            )
            self.started = False
        shutil.rmtree(self.workdir, ignore_errors=True)


def print_settings() -> None:
    with _admin() as conn:
        shown = []
        for name in SETTINGS_SHOWN:
            with suppress(psycopg.Error):
                shown.append(f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}")
    print("  server settings: " + ", ".join(shown), flush=True)


def _db_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(cob_seed.pg_dsn(ADMIN_URL), autocommit=True)


def _drop(name: str) -> None:
    with _admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")


def _create(name: str, template: str | None = None) -> str:
    with _admin() as conn:
        conn.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
        if template is None:
            conn.execute("CREATE DATABASE " + name)
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
            # FILE_COPY: one checkpoint and a file copy, much faster than WAL_LOG for a multi-GB template.
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
    return _db_url(name)


@contextmanager
def _database(name: str, template: str | None = None) -> Iterator[str]:
    url = _create(name, template)
    try:
        yield url
    finally:
        _drop(name)


# --- measuring a subprocess tree -------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    return found


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children(pid)
    return pids


def _hwm_kb(pid: int) -> int:
    with suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float  # largest single process (peak)
    sum_rss_mb: float  # sum of every process's peak (upper bound of the tree at once)
    processes: int


def run_measured(cmd: list[str], env: dict[str, str]) -> Measured:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        peaks: dict[int, int] = defaultdict(int)
        try:
            while True:
                for pid in _tree(proc.pid):
                    peaks[pid] = max(peaks[pid], _hwm_kb(pid))
                waited, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if waited:
                    break
                time.sleep(0.1)
        except BaseException:
            for pid in reversed(_tree(proc.pid)):  # interrupted: take the close (and its workers) down with us
                with suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            proc.wait()
            raise
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        peaks[proc.pid] = max(peaks[proc.pid], usage.ru_maxrss)  # ru_maxrss (kB) covers reaped workers too
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds,
            proc.returncode,
            out.read(),
            err.read(),
            max(peaks.values()) / 1024,
            sum(peaks.values()) / 1024,
            len(peaks),
        )


def close_day_cli(url: str, workers: int, chunk_size: int) -> Measured:
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "app.cli", "close-day", "--workers", str(workers), "--chunk-size", str(chunk_size)]
    return run_measured(cmd, env)


# --- checks ----------------------------------------------------------------------------------------------


def pg_books(url: str, day: date) -> dict[str, int]:
    """What the close posted and did (the seed has no journal lines, so every line of `day` is the run's)."""
    with psycopg.connect(cob_seed.pg_dsn(url)) as conn:
        lines, debit, credit = conn.execute(
            "SELECT count(*), COALESCE(sum(debit), 0), COALESCE(sum(credit), 0) FROM journal_lines "
            "WHERE effective_date = %s",
            (day,),
        ).fetchone()
        accrued = conn.execute(
            "SELECT COALESCE(sum(l.debit - l.credit), 0) FROM journal_lines l JOIN journal_entries e "
            "ON e.id = l.entry_id WHERE l.effective_date = %s AND e.entry_type = 'accrual' AND l.account_code = '1200'",
            (day,),
        ).fetchone()[0]
        snap, active = conn.execute(
            "SELECT count(*) FILTER (WHERE snapshot_date = %s), count(*) FROM loans WHERE status = 'active'", (day,)
        ).fetchone()
        fees = conn.execute("SELECT count(*) FROM loan_installments WHERE late_fee_date = %s", (day,)).fetchone()[0]
    return {
        "lines": lines,
        "debit": debit,
        "credit": credit,
        "accrued": accrued,
        "aged": snap,
        "active": active,
        "fees": fees,
    }


def _parse_cli(stdout: str) -> tuple[int | None, int | None, int | None]:
    """(loans, interest accrued in minor units, duration ms) from the close-day summary line (one currency)."""
    match = re.search(r"(\d+) loans, interest accrued (?:[A-Z]{3} (-?[\d.]+)|none).*?, (\d+) ms", stdout)
    if not match:
        return None, None, None
    interest = int(Decimal(match[2]) * 100) if match[2] else 0  # the bench's book is USD only
    return int(match[1]), interest, int(match[3])


# --- the raw baseline ------------------------------------------------------------------------------------

RAW_NEW = (
    "(l.interest_before_current + (2 * l.current_period_interest * f.numerator + f.denominator) / (2 * f.denominator))"
)
RAW_JOIN = (
    "JOIN cob_accrual_fractions f ON f.business_date = %(d)s AND f.day_count = l.day_count "
    "AND f.period_start = l.current_period_start AND f.due_date = l.current_due_date"
)
RAW_LINES = (
    "INSERT INTO journal_lines (entry_id, account_code, loan_id, currency, effective_date, booking_date, debit, "
    "credit) SELECT %(e)s, v.code, l.id, l.currency, %(d)s, %(d)s, v.debit, v.credit FROM loans l " + RAW_JOIN + " "
    f"CROSS JOIN LATERAL (VALUES ('1200', {RAW_NEW} - l.interest_recognized, 0::bigint), "
    f"('4000', 0::bigint, {RAW_NEW} - l.interest_recognized)) v(code, debit, credit) "
    f"WHERE l.status = 'active' AND {RAW_NEW} > l.interest_recognized"
)
RAW_UPDATE = (
    f"UPDATE loans l SET interest_outstanding = l.interest_outstanding + ({RAW_NEW} - l.interest_recognized), "
    f"interest_recognized = {RAW_NEW} FROM cob_accrual_fractions f WHERE f.business_date = %(d)s "
    "AND f.day_count = l.day_count AND f.period_start = l.current_period_start AND f.due_date = l.current_due_date "
    "AND l.status = 'active'"
)


def raw_baseline(url: str, day: date) -> dict[str, float]:
    fractions = cob_seed.period_fractions(url, day)
    entry = str(uuid.uuid4())
    with psycopg.connect(cob_seed.pg_dsn(url)) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO cob_accrual_fractions (business_date, day_count, period_start, due_date, numerator, "
                "denominator) VALUES (%s, %s, %s, %s, %s, %s)",
                [(day, *f) for f in fractions],
            )
        conn.commit()
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO journal_entries (id, entry_type, currency, effective_date, booking_date, posted_at, "
            "description) VALUES (%s, 'accrual', 'USD', %s, %s, now(), 'raw baseline')",
            (entry, day, day),
        )
        lines = conn.execute(RAW_LINES, {"e": entry, "d": day}).rowcount
        inserted = time.perf_counter()
        updated_rows = conn.execute(RAW_UPDATE, {"d": day}).rowcount
        updated = time.perf_counter()
        conn.commit()
        done = time.perf_counter()
        debit, credit = conn.execute(
            "SELECT sum(debit), sum(credit) FROM journal_lines WHERE entry_id = %s", (entry,)
        ).fetchone()
    return {
        "insert_s": inserted - started,
        "update_s": updated - inserted,
        "commit_s": done - updated,
        "total_s": done - started,
        "lines": lines,
        "updated": updated_rows,
        "accrued": int(debit or 0),
        "balanced": int(debit == credit),
    }


# --- in-process statement profile ------------------------------------------------------------------------


def _label(statement: str) -> str:
    flat = " ".join(statement.split())
    flat = re.sub(r"%\(\w+\)s", "?", flat)
    if flat.startswith("INSERT INTO journal_lines"):  # the ledger's generic insert: say which lines it carries
        return "INSERT INTO journal_lines … " + (
            "accrual lines" if "cob_accrual_fractions" in flat else "late-fee lines"
        )
    return flat[:110]


def profile_close(url: str, chunk_size: int) -> tuple[float, list[tuple[str, int, float]], list[str]]:
    """Times every statement of an in-process close; with BENCH_COB_EXPLAIN=1 also the EXPLAIN (ANALYZE, BUFFERS)
    of every statement of the second chunk (auto_explain, its plans caught as notices)."""
    from app.operations import cob

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    plans: list[str] = []
    claims = [0]
    db = Database(url, pool_size=2)

    if EXPLAIN:

        @event.listens_for(db.engine, "connect")
        def _connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.add_notice_handler(
                lambda diag: plans.append(diag.message_primary or "") if claims[0] == 2 else None
            )
            for stmt in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_buffers = on",
                "SET auto_explain.log_timing = on",
                "SET auto_explain.log_level = notice",
                "SET auto_explain.log_min_duration = -1",
            ):
                dbapi_conn.execute(stmt)
            dbapi_conn.commit()

    @event.listens_for(db.engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if EXPLAIN and "FROM cob_chunks" in statement and "SKIP LOCKED" in statement:
            claims[0] += 1
            if claims[0] in (2, 3):  # the second chunk: caches warm, fractions of the day known
                cursor.connection.execute(f"SET auto_explain.log_min_duration = {0 if claims[0] == 2 else -1}")
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(db.engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        entry = totals[_label(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())

    started = time.perf_counter()
    try:
        cob.close_through(db, None, workers=1, chunk_size=chunk_size)
    finally:
        db.dispose()
    wall = time.perf_counter() - started
    rows = sorted(((k, int(v[0]), v[1]) for k, v in totals.items()), key=lambda r: -r[2])
    return wall, rows, plans


# --- SQLite ----------------------------------------------------------------------------------------------


def sqlite_books(path: Path, day: date) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        lines, debit, credit = conn.execute(
            "SELECT count(*), COALESCE(sum(debit), 0), COALESCE(sum(credit), 0) FROM journal_lines "
            "WHERE effective_date = ?",
            (day.isoformat(),),
        ).fetchone()
        aged = conn.execute("SELECT count(*) FROM loans WHERE snapshot_date = ?", (day.isoformat(),)).fetchone()[0]
    return {"lines": lines, "debit": debit, "credit": credit, "aged": aged}


# --- output ----------------------------------------------------------------------------------------------


def _report_run(label: str, loans: int, m: Measured, books: dict[str, int] | None) -> None:
    n, accrued, ms = _parse_cli(m.stdout)
    rate = loans / m.seconds if m.seconds else 0
    print(
        f"  {label:<26} wall {m.seconds:7.1f} s  ({rate:>9,.0f} loans/s)  close {ms or 0:>7,} ms  "
        f"RSS max {m.max_rss_mb:6.1f} MB, sum {m.sum_rss_mb:6.1f} MB over {m.processes} processes"
        + ("" if m.returncode == 0 else f"  EXIT {m.returncode}"),
        flush=True,
    )
    if m.returncode != 0:
        print("    stderr: " + m.stderr.strip()[-1500:].replace("\n", "\n    "), flush=True)
    if books is not None:
        ok = "balanced" if books["debit"] == books["credit"] else "NOT BALANCED"
        print(
            f"    {n} loans closed, interest accrued {accrued}; lines {books['lines']:,} debit {books['debit']:,} "
            f"credit {books['credit']:,} ({ok}); snapshots at the COB date {books['aged']:,}/"
            f"{books.get('active', books['aged']):,}; late fees charged {books.get('fees', '?')}",
            flush=True,
        )


def _verdict(name: str, ok: bool) -> str:
    return f"{name}: {'met' if ok else 'MISSED'}"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(f"bench_cob: signal {signum}, cleaning up")


def main() -> None:
    global ADMIN_URL  # noqa: PLW0603 - every helper names the server through it
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the databases (and our cluster) go when stopped
    cluster = OwnCluster() if CLUSTER == "own" else None
    try:
        if cluster is not None:
            ADMIN_URL = cluster.start()
            print(f"  own cluster: {cluster.bindir.parent.name} on port {cluster.port}, data in {cluster.data}")
        print_settings()
        postgres_leg()
        sqlite_leg()
    finally:
        if cluster is not None:
            cluster.stop()


def _write_stats(url: str) -> dict[str, int]:
    """WAL position and the loans table's update counters (a fresh copy starts at zero)."""
    with psycopg.connect(cob_seed.pg_dsn(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        row = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'loans'"
        ).fetchone()
        bal = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'loan_account_balances'"
        ).fetchone()
        lines = conn.execute(
            "SELECT COALESCE(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname LIKE 'journal_lines%%'"
        ).fetchone()[0]
    return {
        "wal": int(wal),
        "upd": int(row[0]),
        "hot": int(row[1]),
        "bal_upd": int(bal[0]),
        "bal_hot": int(bal[1]),
        "lines": int(lines),
    }


def _report_writes(before: dict[str, int], url: str) -> None:
    after = _write_stats(url)
    upd, hot = after["upd"] - before["upd"], after["hot"] - before["hot"]
    print(
        f"    WAL {(after['wal'] - before['wal']) / 2**20:,.0f} MB; loans rows updated {upd:,} "
        f"({hot:,} HOT, {upd / max(LOANS, 1):.2f} per loan); journal lines inserted {after['lines'] - before['lines']:,}; "
        f"posted balances updated {after['bal_upd'] - before['bal_upd']:,} "
        f"({after['bal_hot'] - before['bal_hot']:,} HOT)",
        flush=True,
    )


def postgres_leg() -> None:
    runs = [tuple(int(x) for x in spec.split("x")) for spec in RUNS.split(",") if spec.strip()]
    seed = f"{TAG}_seed"
    print(
        f"close of business: {LOANS:,} loans on PostgreSQL ({', '.join(f'W={w} chunk={c}' for w, c in runs)}), "
        f"raw baseline, {SQLITE_LOANS:,} loans on SQLite",
        flush=True,
    )
    results: dict[str, Measured] = {}
    raw: dict[str, float] = {}
    try:
        seed_url = _create(seed)
        init_db(seed_url)
        day = _business_date(seed_url)
        started = time.perf_counter()
        cob_seed.seed_postgres(seed_url, LOANS, day, log=lambda s: print(s, flush=True))
        print(f"  seed total {time.perf_counter() - started:.1f} s, COB date {day}, {_size(seed)}", flush=True)
        print(f"  load: {_uptime()}", flush=True)

        with _database(f"{TAG}_raw", seed) as url:
            before = _write_stats(url)
            raw = raw_baseline(url, day)
            print(
                f"  {'raw set-based baseline':<26} total {raw['total_s']:7.1f} s  (INSERT … SELECT {raw['lines']:,} "
                f"lines {raw['insert_s']:.1f} s, UPDATE {raw['updated']:,} loans {raw['update_s']:.1f} s, COMMIT "
                f"{raw['commit_s']:.1f} s); accrued {raw['accrued']:,}, "
                f"{'balanced' if raw['balanced'] else 'NOT BALANCED'}",
                flush=True,
            )
            _report_writes(before, url)

        for n, (workers, chunk) in enumerate(runs, 1):
            with _database(f"{TAG}_run", seed) as url:
                before = _write_stats(url)
                m = close_day_cli(url, workers, chunk)
                repeated = runs.count((workers, chunk)) > 1
                results[f"W={workers} chunk={chunk}" + (f" (run {n})" if repeated else "")] = m
                _report_run(f"COB W={workers} chunk={chunk:,}", LOANS, m, pg_books(url, day))
                _report_writes(before, url)
                print(f"    load: {_uptime()}", flush=True)

        for label, m in results.items():
            _, accrued, _ = _parse_cli(m.stdout)
            same = "same interest as the baseline" if accrued == raw["accrued"] else f"interest {accrued} differs"
            print(f"    COB {label}: {m.seconds / raw['total_s']:.2f} × raw ({same})", flush=True)

        if PROFILE:
            chunk = runs[-1][1] if runs else 5_000
            with _database(f"{TAG}_prof", seed) as url:
                wall, rows, plans = profile_close(url, chunk)
            total = sum(r[2] for r in rows)
            print(f"  statement profile (in-process, W=1, chunk={chunk:,}): wall {wall:.1f} s, in SQL {total:.1f} s")
            for label, count, seconds in rows[:16]:
                print(f"    {seconds:7.2f} s {100 * seconds / wall:5.1f} %  ×{count:<5} {label}")
            for plan in plans:
                print("    " + plan.replace("\n", "\n    "))

        if results:
            best = min(results.values(), key=lambda m: m.seconds)
            scaled = best.seconds * 1_000_000 / LOANS
            ratio = best.seconds / raw["total_s"]
            rss = max(m.max_rss_mb for m in results.values())
            verdicts = (
                _verdict(f"≤ 60 s per 1M loans ({scaled:.1f} s/1M)", scaled <= TARGET_SECONDS_PER_MILLION),
                _verdict(f"≤ 1.5 × raw ({ratio:.2f} ×)", ratio <= TARGET_RATIO),
                _verdict(f"≤ 300 MB RSS per process (max {rss:.0f} MB)", rss <= TARGET_RSS_MB),
            )
            print("  targets (best run): " + "; ".join(verdicts), flush=True)
    finally:
        _drop(seed)


def _uptime() -> str:
    with suppress(OSError):
        return "load average " + ", ".join(Path("/proc/loadavg").read_text().split()[:3]) + f" on {os.cpu_count()} CPUs"
    return "?"


def sqlite_leg() -> None:
    if SQLITE_LOANS <= 0:
        return
    small = f"{TAG}_small"
    try:
        url = _create(small)
        init_db(url)
        day = _business_date(url)
        started = time.perf_counter()
        cob_seed.seed_postgres(url, SQLITE_LOANS, day, log=lambda s: None)
        with tempfile.TemporaryDirectory(prefix="bench_cob_") as tmp:
            path = Path(tmp) / "cob.db"
            sqlite_url = f"sqlite:///{path}"
            init_db(sqlite_url)
            counts = cob_seed.copy_to_sqlite(url, sqlite_url)
            _drop(small)
            print(
                f"  SQLite: seeded {counts['loans']:,} loans / {counts['loan_installments']:,} installments "
                f"in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 2**20:.0f} MB file)",
                flush=True,
            )
            m = close_day_cli(sqlite_url, 1, 5_000)
            _report_run("SQLite COB W=1 chunk=5,000", SQLITE_LOANS, m, sqlite_books(path, day))
    finally:
        _drop(small)


def _business_date(url: str) -> date:
    db = Database(url, pool_size=1)
    try:
        from app.business_calendar import repository

        with db.session(writer=False) as session:
            return repository.business_date(session)
    finally:
        db.dispose()


def _size(name: str) -> str:
    with _admin() as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(%s))", (name,)).fetchone()[0]
    return f"database {size}"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
