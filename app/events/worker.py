"""`loanctl deliver-events`: the one background worker of events out. Each round delivers the due webhooks,
publishes new outbox events to RabbitMQ (when AMQP_URL is set) and processes a chunk of any pending payment
batch. Long-running; SIGTERM/SIGINT finish the round in hand and exit 0; `once` does what is due and returns."""

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType

from app.core.config import Settings
from app.core.logging import get_logger
from app.database import Database
from app.events import delivery

log = get_logger(__name__)


@dataclass
class Totals:
    webhooks: int = 0
    published: int = 0
    batch_rows: int = 0
    rounds: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def busy(self) -> int:
        return self.webhooks + self.published + self.batch_rows


Step = Callable[[], int]


class Worker:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.policy = delivery.Policy.of(settings)
        self.stop = threading.Event()
        self.totals = Totals()

    def install_signal_handlers(self) -> None:
        def _graceful(signum: int, _frame: FrameType | None) -> None:
            log.info("worker_stopping", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)

    def run(self, once: bool = False) -> Totals:
        from app.events import publisher
        from app.payments import batches

        amqp = publisher.Publisher.from_settings(self.settings)
        with (
            delivery.http_client(self.policy) as client,
            ThreadPoolExecutor(self.settings.worker_concurrency, thread_name_prefix="webhook") as pool,
        ):
            try:
                while not self.stop.is_set():
                    sent = delivery.deliver_due(self.db, client, pool, self.policy)
                    published = amqp.publish_pending(self.db) if amqp else 0
                    rows = batches.process_next_chunk(self.db, self.settings)
                    self.totals.webhooks += sent
                    self.totals.published += published
                    self.totals.batch_rows += rows
                    self.totals.rounds += 1
                    if sent or published or rows:
                        continue
                    if once:
                        break
                    self.stop.wait(self.settings.worker_poll_seconds)
            finally:
                if amqp:
                    amqp.close()
        return self.totals


def run_until_idle(db: Database, settings: Settings, timeout: float = 60.0) -> Totals:
    """Tests and benchmarks: run rounds until nothing is due (waiting out short backoffs) or the timeout."""
    worker = Worker(db, settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.run(once=True)
        if not pending_work(db):
            break
        time.sleep(0.02)
    return worker.totals


def pending_work(db: Database) -> bool:
    from sqlalchemy import select

    from app.events.models import WebhookDelivery
    from app.payments.models import PaymentBatchRow

    with db.session(writer=False) as session:
        for stmt in (
            select(WebhookDelivery.id).where(WebhookDelivery.status == "pending").limit(1),
            select(PaymentBatchRow.row_no).where(PaymentBatchRow.status == "pending").limit(1),
        ):
            if session.execute(stmt).first() is not None:
                return True
    return False
