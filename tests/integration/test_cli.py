"""loanctl: init-db, create-user, bootstrap-admin (run as a real subprocess, as an operator would)."""

import os
import subprocess
import sys

from tests.conftest import PASSWORD, unique


def _run(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    env.pop("ADMIN_PASSWORD", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_init_db_and_create_user(migrated_url: str) -> None:
    assert _run(migrated_url, "init-db").returncode == 0
    name = unique("cli")
    r = _run(migrated_url, "create-user", name, "--role", "manager", "--password", PASSWORD)
    assert r.returncode == 0, r.stderr
    again = _run(migrated_url, "create-user", name, "--role", "manager", "--password", PASSWORD)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = _run(migrated_url, "create-user", unique("o"), "--role", "officer", "--password", PASSWORD)
    assert bad.returncode == 2 and "branch" in bad.stderr


def test_create_user_prompts_for_password(migrated_url: str) -> None:
    r = _run(migrated_url, "create-user", unique("prompt"), "--role", "auditor", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert PASSWORD not in r.stdout


def test_bootstrap_admin_only_on_an_empty_database(tmp_path: object, migrated_url: str) -> None:
    url = f"sqlite:///{tmp_path}/boot.db"
    assert _run(url, "init-db").returncode == 0
    first = _run(url, "bootstrap-admin")
    assert first.returncode == 0 and "generated password" in first.stdout
    second = _run(url, "bootstrap-admin")
    assert second.returncode == 0 and second.stdout == ""
    assert _run(migrated_url, "bootstrap-admin").stdout == ""  # users exist there
