"""The kit as a whole: .env.example matches the app's settings, every file in deploy/ is exercised by a check
and explained in docs/DEPLOY.md, and the guide does not repeat the old guide's traps."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.deploy.kit import DEPLOY, PYTHON, REPO, require_app

pytestmark = pytest.mark.deploy

ENV_EXAMPLE = REPO / ".env.example"
GUIDE = REPO / "docs" / "DEPLOY.md"


KEY = r"^(?:# )?([A-Z][A-Z0-9_]*)="  # a setting, possibly commented out (test-only knobs)


def example_keys() -> list[str]:
    return [m.group(1) for m in re.finditer(KEY, ENV_EXAMPLE.read_text(), re.M)]


def test_env_example_lists_exactly_the_apps_settings() -> None:
    require_app()
    code = ("import json; from app.core.config import Settings; "
            "print(json.dumps(sorted(k.upper() for k in Settings.model_fields)))")
    r = subprocess.run([PYTHON, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    fields = set(json.loads(r.stdout))
    keys = example_keys()
    assert len(keys) == len(set(keys)), "no setting twice"
    assert set(keys) == fields, f"missing: {fields - set(keys)}; unknown to the app: {set(keys) - fields}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(KEY, line):
            assert lines[i - 1].startswith("#"), f"{line.split('=')[0]} has a comment above it"


def test_env_example_is_refused_until_the_secret_is_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Copied as is, the production example loads (types valid) but refuses to start on the placeholder secret."""
    require_app()
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    code = ("import json; from app.core.config import Settings; s = Settings(); "
            "print(json.dumps([s.env, s.production_problems()]))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    r = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mode, problems = json.loads(r.stdout)
    assert mode == "production"
    assert len(problems) == 1 and "SECRET_KEY" in problems[0], problems


def test_every_deploy_file_is_checked_and_documented() -> None:
    checks = "\n".join(p.read_text() for p in (REPO / "tests" / "deploy").glob("*.py"))
    guide = GUIDE.read_text()
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) >= 20
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if rel == "deploy/check.sh":
            continue  # the entry point that runs these checks
        used = path.name in checks or rel in checks or path.relative_to(DEPLOY).as_posix() in checks
        assert used, f"{rel} is not exercised by any check in tests/deploy/"
        assert path.name in guide, f"{rel} is not explained in docs/DEPLOY.md"
    for script in (DEPLOY / "backup" / "backup.sh", DEPLOY / "backup" / "restore.sh",
                   DEPLOY / "postgres" / "migrate.sh", DEPLOY / "pgbouncer" / "userlist.sh", DEPLOY / "check.sh"):
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text, script.name
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def code_blocks(lang: str) -> str:
    return "\n".join(re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S))


def test_guide_does_not_repeat_the_old_traps() -> None:
    guide = GUIDE.read_text()
    commands = code_blocks("bash") + code_blocks("python") + code_blocks("nginx") + code_blocks("ini")
    assert "python3.9" not in commands and "Python ≥ 3.11" in guide
    assert "uvicorn.workers.UvicornWorker" not in commands
    assert "GRANT ALL PRIVILEGES ON DATABASE" not in commands + code_blocks("sql")
    assert "X-XSS-Protection" not in commands
    assert "| gzip" not in commands
    assert "postgresql://loan_app" not in code_blocks("env"), "the app URL names the psycopg driver"
    assert "postgresql+psycopg://loan_app:" in code_blocks("env")
    # UFW: SSH is allowed before the firewall is enabled.
    assert commands.index("ufw allow OpenSSH") < commands.index("ufw enable")
    for step in ("certbot certonly --webroot", "certbot renew --dry-run", "nginx -t", "logrotate -d",
                 "deploy/postgres/migrate.sh", "restore.sh", "supervisorctl signal HUP", "loan-close-day.timer",
                 "scrape_configs", "SENTRY_DSN", "DATABASE_READ_URL", "Citus", "REDIS_URL"):
        assert step in guide, step
