"""nginx: the shipped conf.d snippet + site pass `nginx -t` on Debian's nginx, and, served for real in front of
gunicorn, give TLS, the HTTP→HTTPS redirect, security headers, the 10 MB body limit, rate limits that spare
/health, and the real client IP (never one the client made up)."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.kit import (
    DEPLOY,
    GUNICORN,
    Proc,
    apt_install,
    free_port,
    gunicorn_env,
    substitute,
    wait_http,
)

pytestmark = pytest.mark.deploy

SNIPPET = DEPLOY / "nginx" / "conf.d" / "loan-backend-ratelimit.conf"
SITE = DEPLOY / "nginx" / "sites-available" / "loan-backend"
DOMAIN = "api.yourdomain.com"
HERE = Path(__file__).parent


def nginx_bin() -> str:
    apt_install("nginx-light")
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(exe).exists(), "nginx-light is installed but there is no nginx binary"
    return exe


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "fullchain.pem", tmp / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@dataclass
class Prefix:
    root: Path
    conf: Path
    site: Path
    http_port: int
    https_port: int
    cert: Path
    www: Path


def build_prefix(tmp: Path, upstream_port: int, site_text: str | None = None, www: Path | None = None) -> Prefix:
    """A throwaway nginx prefix laid out like Debian's /etc/nginx: the stock nginx.conf (which includes
    conf.d/*.conf inside http {} and sites-enabled/*), with our snippet and site rewritten only for ports,
    certificate and log paths."""
    root = tmp / "nginx"
    www = www or root / "www"
    for d in ("conf.d", "sites-available", "sites-enabled", "logs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(root)
    http_port, https_port = free_port(), free_port()
    stock = Path("/etc/nginx/nginx.conf").read_text()
    conf = substitute(stock, [
        ("pid /run/nginx.pid;", f"pid {root}/nginx.pid;"),
        ("/var/log/nginx/", f"{root}/logs/"),
        ("include /etc/nginx/conf.d/*.conf;", f"include {root}/conf.d/*.conf;"),
        ("include /etc/nginx/sites-enabled/*;", f"include {root}/sites-enabled/*;"),
    ])
    (root / "nginx.conf").write_text(conf)
    shutil.copy(SNIPPET, root / "conf.d" / SNIPPET.name)
    site = substitute(site_text if site_text is not None else SITE.read_text(), [
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n"),
        ("    listen [::]:443 ssl http2;\n", ""),
        (f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem", str(cert)),
        (f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem", str(key)),
        ("/var/log/nginx/", f"{root}/logs/"),
        ("root /var/www/html;", f"root {www};"),
        ("server 127.0.0.1:8000 ", f"server 127.0.0.1:{upstream_port} "),
    ])
    (root / "sites-available" / "loan-backend").write_text(site)
    (root / "sites-enabled" / "loan-backend").symlink_to(root / "sites-available" / "loan-backend")
    # Debian's module snippets (modules-enabled/*.conf) name modules relative to the prefix.
    (root / "modules").symlink_to("/usr/lib/nginx/modules")
    root.chmod(0o755)
    return Prefix(root, root / "nginx.conf", root / "sites-available" / "loan-backend", http_port, https_port, cert,
                  www)


def nginx_t(exe: str, p: Prefix) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "-t", "-p", f"{p.root}/", "-c", str(p.conf)], capture_output=True, text=True)


def test_snippet_and_site_pass_nginx_t(tmp_path: Path) -> None:
    exe = nginx_bin()
    p = build_prefix(tmp_path, upstream_port=free_port())
    r = nginx_t(exe, p)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr


def test_limit_req_zone_inside_server_fails_nginx_t(tmp_path: Path) -> None:
    """The seed guide's trap: limit_req_zone in a site's server {} is rejected, which is why it lives in conf.d."""
    exe = nginx_bin()
    zone = "limit_req_zone $binary_remote_addr zone=loan_api:10m rate=10r/s;"
    site = SITE.read_text().replace("    # Issued by: certbot", f"    {zone}\n    # Issued by: certbot", 1)
    assert zone in site
    p = build_prefix(tmp_path, upstream_port=free_port(), site_text=site)
    (p.root / "conf.d" / SNIPPET.name).unlink()  # the zone is now only in server {}
    r = nginx_t(exe, p)
    assert r.returncode != 0
    assert '"limit_req_zone" directive is not allowed here' in r.stderr, r.stderr


# --- served for real ----------------------------------------------------------------------------------------
@dataclass
class Stack:
    prefix: Prefix
    upstream_port: int

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                tls: bool = True, source: str | None = None) -> tuple[int, dict[str, str], bytes]:
        if tls:
            ctx = ssl.create_default_context(cafile=str(self.prefix.cert))
            ctx.check_hostname = False  # we connect to 127.0.0.1; the certificate is for DOMAIN
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.prefix.https_port, context=ctx, timeout=30)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.prefix.http_port, timeout=30,
                                              source_address=(source, 0) if source else None)
        try:
            conn.request(method, path, body=body, headers={"Host": DOMAIN, **(headers or {})})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx (shipped site, real TLS) → gunicorn (shipped config) → the echo app."""
    exe = nginx_bin()
    tmp = tmp_path_factory.mktemp("stack")
    port = free_port()
    started: list[Proc] = []
    # The ACME webroot must be readable by nginx's workers (www-data), which pytest's 0700 tmp dirs are not.
    www = Path(tempfile.mkdtemp(prefix="deploy-check-www-"))
    www.chmod(0o755)
    (www / ".well-known" / "acme-challenge").mkdir(parents=True, mode=0o755)
    try:
        g = Proc([GUNICORN, "-c", str(DEPLOY / "gunicorn_config.py"), "--chdir", str(HERE), "echo_app:app"],
                 tmp / "gunicorn.out", env=gunicorn_env(tmp, port))
        started.append(g)
        wait_http(f"http://127.0.0.1:{port}/ping", g)
        p = build_prefix(tmp, port, www=www)
        r = nginx_t(exe, p)
        assert r.returncode == 0, r.stderr
        n = Proc([exe, "-p", f"{p.root}/", "-c", str(p.conf), "-g", "daemon off;"], tmp / "nginx.out")
        started.append(n)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", p.https_port), timeout=1).close()
                break
            except OSError:
                assert n.alive(), n.tail()
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)
        yield Stack(p, port)
    finally:
        for proc in reversed(started):
            proc.stop(timeout=15)
        shutil.rmtree(www, ignore_errors=True)


SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def assert_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{name}: {headers.get(name)!r} (all: {headers})"
    assert "x-xss-protection" not in headers
    assert headers.get("server") == "nginx", "server_tokens off: no version in Server"


def test_http_redirects_to_https_but_serves_acme_challenges(stack: Stack) -> None:
    status, headers, _ = stack.request("GET", "/api/v1/loans?x=1", tls=False)
    assert status == 301 and headers["location"] == f"https://{DOMAIN}/api/v1/loans?x=1"
    token = stack.prefix.www / ".well-known" / "acme-challenge" / "tok"
    token.write_text("challenge-ok")
    token.chmod(0o644)
    status, _, body = stack.request("GET", "/.well-known/acme-challenge/tok", tls=False)
    assert (status, body) == (200, b"challenge-ok")


def test_tls_and_security_headers_on_every_answer(stack: Stack) -> None:
    for path in ("/health", "/api/v1/anything"):
        status, headers, _ = stack.request("GET", path)
        assert status == 200
        assert_security_headers(headers)
    status, headers, _ = stack.request("GET", "/metrics")  # scraped on 127.0.0.1:8000, never public
    assert status == 404
    assert_security_headers(headers)


def test_body_limit_is_10_megabytes(stack: Stack) -> None:
    status, _, body = stack.request("POST", "/api/v1/upload", body=b"x" * (9 * 1024 * 1024))
    assert status == 200 and json.loads(body)["body_bytes"] == 9 * 1024 * 1024
    status, headers, _ = stack.request("POST", "/api/v1/upload", body=b"x" * (10 * 1024 * 1024 + 1))
    assert status == 413
    assert_security_headers(headers)


def test_real_client_ip_and_scheme_reach_the_app(stack: Stack) -> None:
    """nginx overwrites X-Forwarded-For with the address it saw; gunicorn (forwarded_allow_ips) believes it
    because it comes from 127.0.0.1, so the app sees the real client and https — not a spoofed header."""
    status, _, body = stack.request("GET", "/api/v1/whoami", headers={"X-Forwarded-For": "203.0.113.66"})
    seen = json.loads(body)
    assert status == 200
    assert seen["client"] == "127.0.0.1", seen  # the address nginx saw for this test client
    assert seen["scheme"] == "https"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-real-ip"] == "127.0.0.1"
    assert len(seen["headers"]["x-request-id"]) == 32


def test_gunicorn_trusts_forwarded_headers_only_from_nginx(stack: Stack) -> None:
    def direct(source: str) -> dict[str, object]:
        conn = http.client.HTTPConnection("127.0.0.1", stack.upstream_port, timeout=10, source_address=(source, 0))
        conn.request("GET", "/", headers={"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"})
        seen = json.loads(conn.getresponse().read())
        conn.close()
        return seen

    assert direct("127.0.0.1")["client"] == "198.51.100.9"  # from nginx's address: trusted
    other = direct("127.0.0.2")  # any other address: headers ignored
    assert other["client"] == "127.0.0.2" and other["scheme"] == "http", other


def test_rate_limits_spare_health(stack: Stack) -> None:
    time.sleep(2.5)  # let earlier tests' requests drain from the 10 r/s bucket
    health = [stack.request("GET", "/health")[0] for _ in range(60)]
    assert set(health) == {200}, "health checks must never be rate limited"
    api = [stack.request("GET", "/api/v1/loans") for _ in range(60)]
    statuses = [s for s, _, _ in api]
    assert statuses[:20] == [200] * 20, "burst=20 absorbs a short burst"
    assert 429 in statuses, "a flood gets 429 (limit_req_status), not 503"
    assert_security_headers(next(h for s, h, _ in api if s == 429))
    login = [stack.request("POST", "/api/v1/auth/token", body=b"username=a&password=b",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})[0] for _ in range(10)]
    assert login[0] == 200 and 429 in login, f"login attempts are limited much harder: {login}"
