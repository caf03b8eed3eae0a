"""backup.sh → restore.sh on the real PostgreSQL: the restored database is identical (row counts, every table's
content fingerprint, the trial balance, the privileges); failures exit non-zero and leave nothing that looks like
a good archive; retention keeps N days and never runs after a failed backup."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.kit import (
    DEPLOY,
    Proc,
    app_env,
    app_ready,
    apply_grants,
    create_prod_database,
    drop_database,
    free_port,
    pg_url,
    psql,
    table_counts,
    unique,
)
from tests.deploy.scenario import lend, serve
from tests.deploy.test_postgres_roles import STAND_IN_JOURNAL, denied, migrate

pytestmark = pytest.mark.deploy

BACKUP = DEPLOY / "backup" / "backup.sh"
RESTORE = DEPLOY / "backup" / "restore.sh"


def run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=600)


def backup_env(names: dict[str, str], backup_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER=names["backup"], PGDATABASE=names["db"],
               BACKUP_DIR=str(backup_dir), RETENTION_DAYS="14")
    env.update(extra)
    return env


def restore_env(names: dict[str, str], **extra: str) -> dict[str, str]:
    return dict(os.environ, PGHOST="127.0.0.1", PGPORT="5432", PGUSER="postgres", RESTORE_OWNER=names["owner"],
                **extra)


def populate(names: dict[str, str], tmp: Path, procs: list[Proc]) -> None:
    """A production-shaped database with data, made the way production makes it: the app's migrations as the
    owner, then the app itself (gunicorn, loan_app) lending money through its API as far as its endpoints go;
    journal stand-ins while the app has no ledger migration yet."""
    create_prod_database(names)
    migrate(names)
    db, owner, app = names["db"], names["owner"], names["app"]
    has_journal = psql("SELECT to_regclass('public.journal_lines') IS NOT NULL", db=db).stdout.strip() == "t"
    if not has_journal:
        psql(STAND_IN_JOURNAL, db=db, user=owner)
        apply_grants(names)
        for n in range(1, 51):
            psql(f"WITH e AS (INSERT INTO journal_entries (posted_on, memo) VALUES (current_date - {n}, 'd{n}') "
                 f"RETURNING id) INSERT INTO journal_lines (entry_id, account_code, debit, credit) "
                 f"SELECT id, '1100', {n * 1000}, 0 FROM e UNION ALL SELECT id, '1000', 0, {n * 1000} FROM e",
                 db=db, user=app)
    if app_ready():
        client = serve(app_env(pg_url(db, app, driver="postgresql+psycopg")), tmp, procs, workers=1)
        lend(client)
        procs.pop().stop()


def fingerprints(db: str) -> dict[str, str]:
    """md5 over every table's rows in a stable order: equal fingerprints mean equal contents."""
    return {t: psql(f'SELECT md5(coalesce(string_agg(x::text, E\'\\n\' ORDER BY x::text), \'\')) FROM "{t}" x',
                    db=db).stdout.strip() for t in table_counts(db)}


def trial_balance(db: str) -> str:
    return psql("SELECT coalesce(sum(debit), 0) || '/' || coalesce(sum(credit), 0) FROM journal_lines",
                db=db).stdout.strip()


def has_disbursement(db: str) -> bool:
    return psql("SELECT to_regclass('public.loans') IS NOT NULL", db=db).stdout.strip() == "t" and \
        psql("SELECT count(*) FROM loans WHERE status = 'active'", db=db, check=False).stdout.strip() not in ("", "0")


def archives(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_backup_then_restore_gives_an_identical_database(prod_roles: dict[str, str], tmp_path: Path,
                                                         procs: list[Proc]) -> None:
    names = prod_roles
    populate(names, tmp_path, procs)
    backups = tmp_path / "backups"
    r = run(BACKUP, backup_env(names, backups))
    assert r.returncode == 0, r.stdout + r.stderr
    dumps = list(backups.glob(f"{names['db']}-*.dump"))
    assert len(dumps) == 1 and (dumps[0].parent / (dumps[0].name + ".sha256")).exists(), archives(backups)
    assert not list(backups.glob("*.partial"))
    assert oct(dumps[0].stat().st_mode & 0o777) == "0o600", "archives hold personal data: owner-only"

    restored = unique("restored")
    try:
        r = run(RESTORE, restore_env(names), str(dumps[0]), restored)
        assert r.returncode == 0, r.stdout + r.stderr
        counts = table_counts(names["db"])
        assert counts and sum(counts.values()) > 0
        assert table_counts(restored) == counts
        assert fingerprints(restored) == fingerprints(names["db"])
        tb = trial_balance(names["db"])
        debit, credit = tb.split("/")
        assert debit == credit, tb
        moved_money = int(debit) > 0  # False only while the app cannot disburse through its API yet
        assert trial_balance(restored) == tb
        # The app role's privileges travel with the archive: still append-only after a restore.
        psql(f'GRANT CONNECT ON DATABASE "{restored}" TO "{names["app"]}"')
        assert denied(psql("DELETE FROM journal_lines", db=restored, user=names["app"], check=False))
        lines = psql("SELECT count(*) FROM journal_lines", db=names["db"]).stdout.strip()
        assert psql("SELECT count(*) FROM journal_lines", db=restored, user=names["app"]).stdout.strip() == lines
        assert moved_money or not has_disbursement(names["db"]), "disbursements post journal lines"

        # Never over an existing database.
        r = run(RESTORE, restore_env(names), str(dumps[0]), restored)
        assert r.returncode != 0 and "already exists" in r.stderr
        assert table_counts(restored) == counts, "the existing database was not touched"
    finally:
        drop_database(restored)


def test_restore_of_a_damaged_archive_fails_and_leaves_no_database(prod_roles: dict[str, str],
                                                                   tmp_path: Path, procs: list[Proc]) -> None:
    names = prod_roles
    populate(names, tmp_path, procs)
    backups = tmp_path / "backups"
    assert run(BACKUP, backup_env(names, backups)).returncode == 0
    dump = next(backups.glob("*.dump"))
    for damage in ("truncated", "checksum"):
        bad = tmp_path / f"{damage}.dump"
        data = dump.read_bytes()
        if damage == "truncated":
            bad.write_bytes(data[: len(data) // 2])
        else:  # same size, one flipped byte, with the original checksum file beside it
            bad.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
            sha = (backups / (dump.name + ".sha256")).read_text().replace(dump.name, bad.name)
            (tmp_path / (bad.name + ".sha256")).write_text(sha)
        target = unique("restore_bad")
        r = run(RESTORE, restore_env(names), str(bad), target)
        assert r.returncode != 0 and "RESTORE FAILED" in r.stderr, (damage, r.stdout, r.stderr)
        assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'").stdout.strip() == "0", damage
        drop_database(target)


@pytest.mark.parametrize("failure", ["no such database", "unreachable server", "archive fails verification"])
def test_failing_backup_exits_non_zero_and_leaves_no_archive(prod_roles: dict[str, str], tmp_path: Path,
                                                             failure: str) -> None:
    names = prod_roles
    create_prod_database(names)
    backups = tmp_path / "backups"
    backups.mkdir()
    old = backups / f"{names['db']}-20000101T000000Z.dump"
    old.write_bytes(b"an old archive that retention would delete")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    env = backup_env(names, backups)
    if failure == "no such database":
        env["PGDATABASE"] = names["db"] + "_missing"
    elif failure == "unreachable server":
        env["PGPORT"] = str(free_port())
    else:  # pg_dump "succeeds" but the archive is not one: pg_restore --list must catch it
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "pg_dump").write_text('#!/bin/sh\nfor a; do case "$a" in --file=*) f="${a#--file=}";; esac; done\n'
                                      'printf garbage > "$f"\n')
        (fake / "pg_dump").chmod(0o755)
        env["PATH"] = f"{fake}:{env['PATH']}"
    r = run(BACKUP, env)
    assert r.returncode != 0, r.stdout
    assert "BACKUP FAILED" in r.stderr
    assert "ok:" not in r.stdout and "done" not in r.stdout
    left = archives(backups)
    assert left == [old.name], f"only the old archive remains — no partial, no new .dump, no retention run: {left}"


def test_retention_keeps_n_days(prod_roles: dict[str, str], tmp_path: Path) -> None:
    names = prod_roles
    create_prod_database(names)
    backups = tmp_path / "backups"
    backups.mkdir()
    db = names["db"]
    ages = {f"{db}-old.dump": 15, f"{db}-old.dump.sha256": 15, f"{db}-recent.dump": 13,
            f"{db}-recent.dump.sha256": 13, "other-database-old.dump": 30, f"{db}-notes.txt": 30}
    for name, days in ages.items():
        (backups / name).write_text("x")
        subprocess.run(["touch", "-d", f"{days} days ago", str(backups / name)], check=True)
    r = run(BACKUP, backup_env(names, backups, RETENTION_DAYS="14"))
    assert r.returncode == 0, r.stdout + r.stderr
    left = archives(backups)
    assert f"{db}-old.dump" not in left and f"{db}-old.dump.sha256" not in left
    for kept in (f"{db}-recent.dump", f"{db}-recent.dump.sha256", "other-database-old.dump", f"{db}-notes.txt"):
        assert kept in left, f"{kept} must survive retention: {left}"
    assert len([n for n in left if n.endswith(".dump") and n.startswith(f"{db}-2")]) == 1
    r = run(BACKUP, backup_env(names, backups, RETENTION_DAYS="0"))
    assert r.returncode != 0 and "RETENTION_DAYS" in r.stderr
