"""Browser tests for the operations console: the real app under uvicorn on a free port, a fresh SQLite database
set up the way an operator would (`python -m app.cli init-db`, `bootstrap-admin`, `create-user`), driven by
Playwright in Debian's Chromium (`apt-get install chromium`; never a downloaded browser).

Outside CI they skip with a message when /usr/bin/chromium (or the playwright package) is missing; under
CI=true that is a failure."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "Browser-password-123"


def _require_browser() -> None:
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing: pip install -r requirements-dev.txt"
    if problem:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium under CI=true: {problem}")
        pytest.skip(f"console browser tests skipped: {problem}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Lender:
    """The running app and what the tests need to know about it."""

    base_url: str
    env: dict[str, str]
    admin_token: str
    branches: dict[str, str] = field(default_factory=dict)
    product_id: str = ""

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.admin_token}", **kw.pop("headers", {})}
        r = httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kw)
        assert r.status_code < 400, r.text
        return r.json()

    def token(self, username: str) -> str:
        r = httpx.post(f"{self.base_url}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="session")
def lender() -> Iterator[Lender]:
    _require_browser()
    tmp = Path(tempfile.mkdtemp(prefix="console-browser-"))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp}/loans.db",
        "SECRET_KEY": "browser-test-secret-" + "b" * 64,
        "ENV": "development",
        "ADMIN_PASSWORD": PASSWORD,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "USER_RATE_LIMIT_PER_MINUTE": "100000",
        "LOGIN_FAILURES_PER_MINUTE": "1000",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "console",
    }
    for key in ("DATABASE_READ_URL", "REDIS_URL", "SENTRY_DSN", "ALLOWED_ORIGINS"):
        env.pop(key, None)
    setup = Lender(f"http://127.0.0.1:{port}", env, "")
    setup.cli("init-db")
    setup.cli("bootstrap-admin")
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{setup.base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the app did not start: " + (tmp / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        setup.admin_token = setup.token("admin")
        for code in ("A", "B"):
            setup.branches[code] = setup.api("POST", "/api/v1/branches", json={"code": code, "name": f"Branch {code}"})[
                "id"
            ]
        setup.cli("create-user", "manager", "--role", "manager", "--password", PASSWORD)
        setup.cli("create-user", "officer_a", "--role", "officer", "--branch", "A", "--password", PASSWORD)
        setup.cli("create-user", "officer_b", "--role", "officer", "--branch", "B", "--password", PASSWORD)
        setup.product_id = setup.api(
            "POST",
            "/api/v1/products",
            json={
                "code": "PERSONAL",
                "name": "Personal loan",
                "currency": "USD",
                "min_principal": "100.00",
                "max_principal": "20000.00",
                "min_term": 3,
                "max_term": 36,
                "annual_rate_percent": "18",
                "min_rate_percent": "8",
                "max_rate_percent": "30",
                "frequency": "monthly",
                "amortization": "equal_installments",
                "interest_method": "declining_balance",
                "day_count": "30/360",
                "late_fee": {"amount": "15.00", "grace_days": 5},
            },
        )["id"]
        yield setup
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(lender: Lender) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def sign_in(browser: Any, lender: Lender) -> Iterator[Any]:
    """sign_in("officer_a") -> a page in a fresh browser context (own cookies), signed in at the dashboard."""
    contexts: list[Any] = []

    def open_as(username: str, width: int = 1280) -> Any:
        context = browser.new_context(base_url=lender.base_url, viewport={"width": width, "height": 900})
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/console")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/console/dashboard")
        return page

    yield open_as
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
