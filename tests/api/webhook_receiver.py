"""A real local HTTP receiver (a thread) that verifies every Standard Webhooks signature with the
`standardwebhooks` package, as an integrator would, and records what it accepted."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    answered: int
    at: float = 0.0  # time.time() of receipt


@dataclass
class Receiver:
    secret: str = ""
    fail_every: int = 0  # answer 500 to every n-th request (0: never)
    always_fail: bool = False
    delay: float = 0.0
    requests: int = 0
    bad_signatures: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def sequences(self, loan_id: str) -> list[int]:
        return [r.body["data"]["sequence"] for r in self.accepted() if r.body["data"].get("loan_id") == loan_id]

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.requests += 1
                    n = receiver.requests
                    try:
                        body = Webhook(receiver.secret).verify(raw, dict(self.headers.items()))
                    except WebhookVerificationError:
                        receiver.bad_signatures += 1
                        status, body = 400, json.loads(raw)
                    else:
                        failing = receiver.always_fail or (receiver.fail_every and n % receiver.fail_every == 0)
                        status = 500 if failing else 204
                    receiver.received.append(Received(self.headers["webhook-id"], body, status, time.time()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
