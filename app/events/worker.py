"""`loanctl deliver-events`: the one background worker of events out. Each round fans new outbox events out to
the subscribed endpoints (their delivery rows), delivers the due webhooks,
publishes new outbox events to RabbitMQ (when AMQP_URL is set) and processes a chunk of any pending payment
batch. Long-running; SIGTERM/SIGINT finish the round in hand and exit 0; `once` does what is due and returns."""

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.core.config import Settings
from app.core.logging import get_logger
from app.database import Database
from app.events import delivery, publisher
from app.events.models import OutboxEvent, WebhookDelivery
from app.payments import batches
from app.payments.models import PaymentBatchRow

log = get_logger(__name__)


@dataclass
class Totals:
    webhooks: int = 0
    published: int = 0
    batch_rows: int = 0
    rounds: int = 0


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
        amqp = publisher.Publisher.from_settings(self.settings)
        with (
            delivery.http_client(self.policy) as client,
            ThreadPoolExecutor(self.settings.worker_concurrency, thread_name_prefix="webhook") as pool,
        ):
            try:
                while not self.stop.is_set():
                    try:
                        fanned = delivery.fan_out(self.db)
                        sent = delivery.deliver_due(self.db, client, pool, self.policy)
                        published = amqp.publish_pending(self.db) if amqp else 0
                        rows = batches.process_next_chunk(self.db, self.settings)
                    except SQLAlchemyError as exc:  # the database is away: wait, then carry on where we were
                        if once:
                            raise
                        log.warning("worker_database_error", error=f"{type(exc).__name__}: {exc}"[:500])
                        self.stop.wait(min(30.0, self.settings.worker_poll_seconds * 10))
                        continue
                    self.totals.webhooks += sent
                    self.totals.published += published
                    self.totals.batch_rows += rows
                    self.totals.rounds += 1
                    if fanned or sent or published or rows:
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
    with db.session(writer=False) as session:
        for stmt in (
            select(OutboxEvent.id).where(OutboxEvent.fanned_out.is_(False)).limit(1),
            select(WebhookDelivery.id).where(WebhookDelivery.status == "pending").limit(1),
            select(PaymentBatchRow.row_no).where(PaymentBatchRow.status == "pending").limit(1),
        ):
            if session.execute(stmt).first() is not None:
                return True
    return False
