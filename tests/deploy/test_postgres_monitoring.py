"""postgresql.conf.d/loan-backend.conf and monitoring.sql on a real PostgreSQL server of the machine's major
version: a throwaway cluster (initdb as `postgres`, on a free port) loads our conf file, preloads
pg_stat_statements, and every monitoring query runs with PostgreSQL 13+ column names — on the primary and on a
streaming replica (the DATABASE_READ_URL shape), so the replication-lag queries return real rows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.kit import DEPLOY, REPO, as_postgres, free_port, pg_server_major

pytestmark = pytest.mark.deploy

CONF = DEPLOY / "postgres" / "postgresql.conf.d" / "loan-backend.conf"
MONITORING = DEPLOY / "postgres" / "monitoring.sql"


@dataclass
class Cluster:
    bindir: Path
    data: Path
    port: int
    socket_dir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(as_postgres(list(args)), capture_output=True, text=True, timeout=300)
        if check and r.returncode != 0:
            pytest.fail(f"{args[0]} failed ({r.returncode}): {r.stdout[-1500:]}{r.stderr[-2500:]}")
        return r

    def psql(self, sql: str = "", db: str = "postgres", file: Path | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / "psql"), "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
               "-d", db, "-v", "ON_ERROR_STOP=1"]
        cmd += ["-f", str(file)] if file else ["-Atqc", sql]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            pytest.fail(f"psql on port {self.port} failed: {r.stderr[-2500:]}\n{sql or file}")
        return r

    def start(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"),
                 "-w", "-t", "60", "start")

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)


def local_overrides(cluster_port: int, socket_dir: Path) -> str:
    # Only what a throwaway cluster on a shared machine must change: its own port and socket, and less shared
    # memory than the 2 GB sized for a dedicated database server (that value is checked by `postgres -C`).
    return (f"port = {cluster_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n"
            "shared_buffers = 128MB\nhuge_pages = off\n")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="deploy-check-pg-"))
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def primary(workdir: Path) -> Iterator[Cluster]:
    major = pg_server_major()
    bindir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bindir / "initdb").exists():
        pytest.fail(f"no initdb in {bindir} (the server's major version is {major})")
    c = Cluster(bindir, workdir / "primary", free_port(), workdir)
    c.run(str(bindir / "initdb"), "-D", str(c.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
    conf_d = c.data / "conf.d"
    c.run("mkdir", "-p", str(conf_d))
    c.run("cp", str(CONF), str(conf_d / CONF.name))
    # Debian's stock postgresql.conf ends with include_dir = 'conf.d'; initdb's does not, so add it — then the
    # local overrides, last so they win.
    (workdir / "overrides.conf").write_text(local_overrides(c.port, workdir))
    c.run("sh", "-c", f"printf \"include_dir = 'conf.d'\\ninclude = '{workdir}/overrides.conf'\\n\" "
                      f">> {c.data}/postgresql.conf")
    # Every value in the shipped file is accepted by this PostgreSQL version, including the 2 GB ones.
    shutil.copy(workdir / "overrides.conf", workdir / "overrides.saved")
    (workdir / "overrides.conf").write_text(f"port = {c.port}\n")
    probe = c.run(str(bindir / "postgres"), "-D", str(c.data), "-C", "shared_buffers")
    assert probe.stdout.strip() in ("262144", "2GB"), probe.stdout
    shutil.copy(workdir / "overrides.saved", workdir / "overrides.conf")
    c.start()
    yield c
    c.stop()


def test_conf_file_is_loaded(primary: Cluster) -> None:
    assert primary.psql("SHOW shared_preload_libraries").stdout.strip() == "pg_stat_statements"
    assert primary.psql("SHOW random_page_cost").stdout.strip() == "1.1"
    assert primary.psql("SHOW log_min_duration_statement").stdout.strip() == "500ms"
    assert primary.psql("SHOW wal_level").stdout.strip() == "replica"
    errors = primary.psql("SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL").stdout.strip()
    assert errors == "0", primary.psql("SELECT sourcefile, name, error FROM pg_file_settings "
                                       "WHERE error IS NOT NULL").stdout


def sql_blocks_in_docs() -> list[str]:
    text = (REPO / "docs" / "DEPLOY.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def test_no_pre_pg13_pg_stat_statements_columns() -> None:
    """The seed guide's `ORDER BY total_time` fails on PostgreSQL 13+; no query we ship or document uses it."""
    sources = {"monitoring.sql": MONITORING.read_text(), "docs/DEPLOY.md sql blocks": "\n".join(sql_blocks_in_docs())}
    for name, sql in sources.items():
        code = re.sub(r"--[^\n]*", "", sql)
        found = re.findall(r"\b(total_time|mean_time|min_time|max_time|stddev_time)\b", code)
        assert not found, f"{name} uses pg_stat_statements columns removed in PostgreSQL 13: {found}"
        assert "total_exec_time" in code


def test_monitoring_queries_run_on_primary_and_replica(primary: Cluster, workdir: Path) -> None:
    p = primary
    p.psql("CREATE DATABASE loan_db_prod")
    p.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db="loan_db_prod")
    p.psql("CREATE TABLE loans (id bigserial PRIMARY KEY, principal bigint); "
           "INSERT INTO loans (principal) SELECT g * 100 FROM generate_series(1, 5000) g; ANALYZE loans",
           db="loan_db_prod")
    for _ in range(12):
        p.psql("SELECT count(*), sum(principal) FROM loans WHERE principal > 1000", db="loan_db_prod")

    # A streaming replica, the way DATABASE_READ_URL's server is made (pg_basebackup -R).
    replica = Cluster(p.bindir, workdir / "replica", free_port(), workdir)
    p.run(str(p.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p.port), "-U", "postgres",
          "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast")
    (workdir / "replica-overrides.conf").write_text(local_overrides(replica.port, workdir))
    p.run("sh", "-c", f"sed -i 's#{workdir}/overrides.conf#{workdir}/replica-overrides.conf#' "
                      f"{replica.data}/postgresql.conf")
    replica.start()
    try:
        deadline = time.monotonic() + 30
        while p.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").stdout.strip() != "1":
            assert time.monotonic() < deadline, "the replica did not start streaming"
            time.sleep(0.3)

        out = p.psql(file=MONITORING, db="loan_db_prod").stdout
        assert "FROM loans WHERE principal >" in out, "top statements list the workload"
        assert "streaming" in out, "replication lag shows the standby"

        on_replica = replica.psql(file=MONITORING, db="loan_db_prod").stdout
        assert "Replica delay" in on_replica
        assert replica.psql("SELECT pg_is_in_recovery()").stdout.strip() == "t"
        assert replica.psql("SELECT count(*) FROM loans", db="loan_db_prod").stdout.strip() == "5000"

        # Every SQL block of docs/DEPLOY.md runs as well (they are the same queries the operator copies).
        blocks = sql_blocks_in_docs()
        assert blocks, "docs/DEPLOY.md shows its monitoring queries"
        monitoring_text = MONITORING.read_text()
        for block in blocks:
            if block.lstrip().startswith("-- monitoring"):
                body = block.split("\n", 1)[1]
                assert body.strip() in monitoring_text, f"docs and monitoring.sql disagree:\n{body}"
                p.psql(body, db="loan_db_prod")
    finally:
        replica.stop()
