"""The app served by gunicorn with the shipped config, and an HTTP scenario run through it. Steps whose path is
not in the app's OpenAPI yet are skipped, so the scenario grows with the app: add endpoints here as they land."""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.kit import DEPLOY, GUNICORN, REPO, Proc, free_port, gunicorn_env, http, loanctl, wait_http

ADMIN_PASSWORD = "Deploy-check-" + uuid.uuid4().hex


@dataclass
class Client:
    base: str
    token: str = ""
    paths: set[str] = field(default_factory=set)

    def call(self, method: str, path: str, body: object = None, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, object]:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers or {})
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        status, _, raw = http(method, self.base + path, body=data, headers=h)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def has(self, path: str) -> bool:
        """Is this path in the OpenAPI document? `{}` matches any path parameter name."""
        pattern = re.escape(path).replace(r"\{\}", r"\{[^/]+\}")
        return any(re.fullmatch(pattern, p) for p in self.paths)


def serve(env: dict[str, str], tmp: Path, procs: list[Proc], workers: int = 2) -> Client:
    """Create the admin (loanctl, same DATABASE_URL as the app), start gunicorn, sign in."""
    port = free_port()
    env = {**env, **gunicorn_env(tmp, port, GUNICORN_WORKERS=str(workers))}
    loanctl(env, "create-user", "admin", "--role", "admin", "--password", ADMIN_PASSWORD)
    g = Proc([GUNICORN, "-c", str(DEPLOY / "gunicorn_config.py"), "app.main:app"], tmp / "gunicorn.out", env=env,
             cwd=REPO)
    procs.append(g)
    c = Client(f"http://127.0.0.1:{port}")
    wait_http(c.base + "/health", g)
    status, token = c.call("POST", "/api/v1/auth/token", form={"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200, token
    c.token = token["access_token"]  # type: ignore[index]
    c.paths = set(c.call("GET", "/openapi.json")[1]["paths"])  # type: ignore[index]
    return c


def branch_body() -> dict[str, str]:
    return {"code": f"B{uuid.uuid4().hex[:8].upper()}", "name": "Deploy check branch"}


# (name, method, path, body factory, expected status) — independent requests, safe to repeat concurrently.
STEPS: list[tuple[str, str, str, Callable[[], object] | None, int]] = [
    ("me", "GET", "/api/v1/users/me", None, 200),
    ("create branch", "POST", "/api/v1/branches", branch_body, 201),
    ("list branches", "GET", "/api/v1/branches", None, 200),
    ("create user", "POST", "/api/v1/users",
     lambda: {"username": f"u{uuid.uuid4().hex[:10]}", "password": "Deploy-check-pw-1", "role": "manager"}, 201),
    ("list users", "GET", "/api/v1/users", None, 200),
    ("schedule preview", "POST", "/api/v1/schedules/preview",
     lambda: {"principal": "10000.00", "annual_rate_percent": "9", "term": 24, "frequency": "monthly",
              "disbursement_date": "2025-01-15"}, 200),
    ("chart of accounts", "GET", "/api/v1/ledger/accounts", None, 200),
    ("trial balance", "GET", "/api/v1/ledger/trial-balance", None, 200),
    ("business date", "GET", "/api/v1/operations/business-date", None, 200),
    ("products", "GET", "/api/v1/products", None, 200),
    ("borrowers", "GET", "/api/v1/borrowers", None, 200),
    ("loans", "GET", "/api/v1/loans", None, 200),
]


def present_steps(c: Client) -> list[tuple[str, str, str, Callable[[], object] | None, int]]:
    return [s for s in STEPS if c.has(s[2])]


def lend(c: Client) -> int:
    """Branch → product → borrower → loan → approve → disburse → payment, as far as the app has the endpoints.
    Returns how many loans got money moved (so the journal has lines)."""
    status, branch = c.call("POST", "/api/v1/branches", branch_body())
    assert status == 201, branch
    if not (c.has("/api/v1/products") and c.has("/api/v1/borrowers") and c.has("/api/v1/loans")):
        return 0
    product = {
        "code": f"P{uuid.uuid4().hex[:6]}", "name": "Personal 12m", "currency": "USD",
        "min_principal": "100.00", "max_principal": "50000.00", "min_term": 3, "max_term": 60,
        "annual_rate_percent": "12", "frequency": "monthly", "amortization": "equal_installments",
        "interest_method": "declining_balance", "day_count": "30/360",
        "late_fee": {"amount": "25.00", "grace_days": 5},
    }
    status, p = c.call("POST", "/api/v1/products", product)
    assert status == 201, p
    moved = 0
    for i in range(3):
        status, b = c.call("POST", "/api/v1/borrowers", {
            "branch_id": branch["id"], "first_name": "Ada", "last_name": f"Deploy{i}",  # type: ignore[index]
            "date_of_birth": "1980-05-17", "national_id": uuid.uuid4().hex[:10]})
        assert status == 201, b
        status, loan = c.call("POST", "/api/v1/loans", {"borrower_id": b["id"], "product_id": p["id"],  # type: ignore[index]
                                                       "principal": f"{1000 + 100 * i}.00", "term": 12})
        assert status == 201, loan
        lid = loan["id"]  # type: ignore[index]
        for action, body in (("approve", {}), ("disburse", {})):
            if not c.has(f"/api/v1/loans/{{}}/{action}"):
                return moved
            status, loan = c.call("POST", f"/api/v1/loans/{lid}/{action}", body)
            assert status == 200, (action, loan)
        moved += 1
        if c.has("/api/v1/loans/{}/payments"):
            status, pay = c.call("POST", f"/api/v1/loans/{lid}/payments", {"amount": "50.00"},
                                 headers={"Idempotency-Key": uuid.uuid4().hex})
            assert status == 201, pay
    return moved
