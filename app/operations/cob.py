"""Close of business: an ordered list of set-based steps run over chunks of active loans, each chunk one
transaction with its checkpoint, so a run killed at any point resumes where it stopped and a completed date
is never processed twice. Chunks are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several worker
processes can share a run (`loanctl close-day --workers N`)."""

import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.business_calendar import repository as repo
from app.core.config import get_settings
from app.core.errors import Conflict, ValidationFailed
from app.core.logging import get_logger
from app.core.metrics import (
    COB_DURATION,
    COB_INTEREST_ACCRUED,
    COB_LATE_FEE_AMOUNT,
    COB_LATE_FEES,
    COB_LOANS,
    LEDGER_LOANS_OUT_OF_BALANCE,
)
from app.core.orm import utcnow
from app.database import Database
from app.domain.calendar import DayCount
from app.domain.servicing import accrual_fraction
from app.events import cob_events, outbox
from app.idempotency import keys as idempotency
from app.identity.access import Principal, Role
from app.ledger import partitions
from app.ledger import service as ledger
from app.loans import engine as loan_engine
from app.loans import reconcile
from app.loans import repository as loans_repo
from app.operations.cob_sql import CHUNK_STRIDE, IN_RANGE, CobSql
from app.operations.models import AccrualFraction, CobChunk, CobRun

log = get_logger(__name__)

DEFAULT_CHUNK_SIZE = 5_000
LEASE = timedelta(seconds=60)
MAX_DAYS_AHEAD = 366
COB_NAMESPACE = uuid.UUID("5b0c9f0e-6c1a-4c3e-9a59-3a1f1f3c0b7e")

Progress = Callable[[int, int], None]  # (chunks done, chunks total)
# Who the journal and events name for what close of business posts itself.
CLOSE_OF_BUSINESS = Principal(
    user_id="close-of-business", username="close-of-business", role=Role.manager, branch_id=None
)


@dataclass(frozen=True)
class DayResult:
    business_date: date
    loans_processed: int
    interest_accrued: int
    late_fees_charged: int
    late_fee_count: int
    duration_ms: int
    already_closed: bool = False
    # Per currency in minor units (CONTRACT "Ledger time"); the plain totals above add currencies up.
    interest_by_currency: dict[str, int] = field(default_factory=dict)
    late_fees_by_currency: dict[str, int] = field(default_factory=dict)
    # Loans whose posted balances differ from their snapshot after the close (None: a run before migration 0018).
    loans_out_of_balance: int | None = None


def add_amounts(*parts: dict[str, int]) -> dict[str, int]:
    """{currency: amount} maps added currency by currency."""
    total: dict[str, int] = {}
    for part in parts:
        for code, amount in part.items():
            total[code] = total.get(code, 0) + int(amount)
    return dict(sorted(total.items()))


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def _claim() -> str:
    """One caller's claim on a run: its process (for the liveness check) plus a token of its own, so two requests
    served by threads of one worker are two claimants rather than one process resuming its own run."""
    return f"{_owner()}:{uuid.uuid4().hex[:12]}"


def _owner_alive(owner: str | None) -> bool:
    if not owner or ":" not in owner:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:40]:
        return True  # another machine: trust the lease instead
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _result(run: CobRun, already_closed: bool = False) -> DayResult:
    return DayResult(
        run.business_date,
        run.loans_processed,
        run.interest_accrued,
        run.late_fees_charged,
        run.late_fee_count,
        run.duration_ms,
        already_closed,
        add_amounts(run.interest_by_currency or {}),
        add_amounts(run.late_fees_by_currency or {}),
        run.loans_out_of_balance,
    )


def close_through(
    db: Database,
    through: date | None,
    *,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> list[DayResult]:
    """Close every day from the business date up to and including `through`, in order (CONTRACT Operations)."""
    with db.session(writer=False) as session:
        today = repo.business_date(session)
        if through is not None and through < today:
            stored = session.get(CobRun, through)
            if stored is not None and stored.status == "completed":
                return [_result(stored, already_closed=True)]
            raise ValidationFailed.single(
                "business_date",
                f"{through.isoformat()} was never closed and is before the business date {today.isoformat()}",
            )
    target = through or today
    if target > today + timedelta(days=MAX_DAYS_AHEAD):
        raise ValidationFailed.single("business_date", f"at most {MAX_DAYS_AHEAD} days after the business date")
    results = []
    day = today
    while day <= target:
        results.append(close_day(db, day, workers=workers, chunk_size=chunk_size, progress=progress))
        day += timedelta(days=1)
    checked = [r.loans_out_of_balance for r in results if not r.already_closed and r.loans_out_of_balance is not None]
    if checked:
        LEDGER_LOANS_OUT_OF_BALANCE.set(checked[-1])
    return results


def _ledger_check(session: Session, day: date, chunks: Sequence[CobChunk]) -> list[str]:
    """verify-ledger's per-loan check after the close (CONTRACT "Ledger time"), set-based on the posted balances:
    each chunk checked its active loans in its own transaction, right after its writes (in parallel, its pages
    still cached); this checks the loans no chunk covered (closed, overpaid and written-off loans, loans added
    after the chunks were cut; one disbursed after its chunk ran waits for the next close). A loan a chunk found
    and that has since left `active` is counted once."""
    if any(c.out_of_balance_ids is None for c in chunks):  # a chunk closed before migration 0018: check all
        return reconcile.out_of_balance_ids(session)
    covered = max((c.seq_hi or 0 for c in chunks), default=0)
    rest = reconcile.out_of_balance_ids(
        session, "NOT (l.status = 'active' AND l.insert_seq <= :covered)", {"covered": covered}
    )
    found = sorted(set(rest).union(*(c.out_of_balance_ids or [] for c in chunks)))
    if found:
        log.error("ledger_loans_out_of_balance", business_date=day.isoformat(), loans=len(found), first=found[:10])
    return found


def close_day(
    db: Database, day: date, *, workers: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: Progress | None = None
) -> DayResult:
    started = time.perf_counter()
    run = _start(db, day, chunk_size, workers)
    if run.status == "completed":
        return _result(run, already_closed=True)
    try:
        if workers > 1 and db.is_postgres:
            _fan_out(db, day, workers, progress)
        else:
            process_chunks(db, day, progress)
        result = _finish(db, day, started)
    except BaseException:
        _release(db, day, run.owner)
        raise
    COB_DURATION.observe(result.duration_ms / 1000)
    COB_LOANS.inc(result.loans_processed)
    COB_LATE_FEES.inc(result.late_fee_count)
    for code, amount in result.interest_by_currency.items():
        COB_INTEREST_ACCRUED.labels(code).inc(max(amount, 0))
    for code, amount in result.late_fees_by_currency.items():
        COB_LATE_FEE_AMOUNT.labels(code).inc(max(amount, 0))
    log.info(
        "close_of_business",
        business_date=day.isoformat(),
        loans=result.loans_processed,
        interest_accrued=result.interest_by_currency,
        late_fees=result.late_fees_by_currency,
        duration_ms=result.duration_ms,
        workers=workers,
    )
    return result


def _start(db: Database, day: date, chunk_size: int, workers: int) -> CobRun:
    try:
        return _claim_run(db, day, chunk_size, workers)
    except IntegrityError as exc:
        # PostgreSQL: a concurrent request inserted the run between our SELECT … FOR UPDATE (which found no row
        # to lock) and our INSERT; the unique business date decides who runs it.
        raise Conflict(f"close of business for {day.isoformat()} is already running", allowed_actions=[]) from exc


def _release(db: Database, day: date, owner: str | None) -> None:
    """A run that failed in this process gives up its lease at once, so a retry resumes without waiting for it."""
    try:
        with db.transaction() as session:
            session.execute(
                update(CobRun)
                .where(CobRun.business_date == day, CobRun.owner == owner, CobRun.status == "running")
                .values(heartbeat_at=None)
            )
    except Exception:  # the original error matters more; an unreleased lease only expires later
        log.warning("close_of_business_release_failed", business_date=day.isoformat())


def _claim_run(db: Database, day: date, chunk_size: int, workers: int) -> CobRun:
    me = _claim()
    with db.transaction() as session:
        stmt = select(CobRun).where(CobRun.business_date == day)
        if db.is_postgres:
            stmt = stmt.with_for_update()
        run = session.scalars(stmt).first()
        now = utcnow()
        if run is not None and run.status == "completed":
            session.expunge(run)
            return run
        if (
            run is not None
            and run.owner != me
            and _owner_alive(run.owner)
            and run.heartbeat_at is not None
            and now - run.heartbeat_at < LEASE
        ):
            raise Conflict(
                f"close of business for {day.isoformat()} is already running ({run.owner})", allowed_actions=[]
            )
        if run is None:
            run = CobRun(business_date=day, status="running", owner=me, heartbeat_at=now, started_at=now)
            session.add(run)
            session.flush()
            run.chunks_total = _create_chunks(session, day, chunk_size, workers)
        else:
            run.owner, run.heartbeat_at = me, now  # take over a crashed run: its done chunks stay done
        session.flush()
        session.expunge(run)
        return run


def _create_chunks(session: Session, day: date, chunk_size: int, workers: int) -> int:
    """Split the active loans into chunks of about chunk_size loans: ranges (lo, hi] of insert_seq, the order
    loans were inserted in, so a chunk's rows lie together on the heap (ranges of random ids would scatter every
    chunk over all of it). Each range of CHUNK_STRIDE chunks' loans is dealt out row by row (insert_seq modulo
    CHUNK_STRIDE), so one transaction rewrites only a share of each heap page and the new row versions fit in
    the page's free space (heap-only updates, fillfactor of loans), the previous chunk's old versions being
    pruned by then; consecutive chunks go to `workers` different ranges, so concurrent workers never rewrite
    the same pages."""
    span = CHUNK_STRIDE * chunk_size
    numbered = text(
        "SELECT insert_seq FROM (SELECT insert_seq, ROW_NUMBER() OVER (ORDER BY insert_seq) AS n FROM loans "
        "WHERE status = 'active') t WHERE n % :span = 0 ORDER BY insert_seq"
    )
    bounds = [int(row[0]) for row in session.execute(numbered, {"span": span})]
    last = session.scalar(text("SELECT MAX(insert_seq) FROM loans WHERE status = 'active'"))
    if last is not None and (not bounds or bounds[-1] != last):
        bounds.append(int(last))
    ranges = list(zip([0, *bounds], bounds, strict=False))  # (previous bound, bound); none without loans
    group = max(workers, 1)
    number = 0
    for first in range(0, len(ranges), group):
        for rem in range(CHUNK_STRIDE):
            for lo, hi in ranges[first : first + group]:
                session.add(
                    CobChunk(
                        business_date=day, chunk_no=number, seq_lo=lo, seq_hi=hi, seq_rem=rem, status="pending"
                    )
                )
                number += 1
    return number


def process_chunks(db: Database, day: date, progress: Progress | None = None, worker: str | None = None) -> int:
    """Claim and close chunks of `day` until none is left. Returns how many this process closed."""
    sql = CobSql(db.is_postgres)
    crash_after = get_settings().cob_fault_after_chunks
    done = 0
    worker = worker or _owner()
    while True:
        with db.transaction() as session:
            stmt = select(CobChunk).where(CobChunk.business_date == day, CobChunk.status == "pending")
            stmt = stmt.order_by(CobChunk.chunk_no).limit(1)
            if db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            chunk = session.scalars(stmt).first()
            if chunk is None:
                return done
            if db.is_postgres:
                # JIT compilation costs more than it saves on these chunk-sized statements (measured 2.2x).
                session.execute(text("SET LOCAL jit = off"))
            _close_chunk(session, sql, day, chunk)
            chunk.status, chunk.done_by = "done", worker
            session.execute(update(CobRun).where(CobRun.business_date == day).values(heartbeat_at=utcnow()))
            finished, total = _chunks_done(session, day)
        done += 1
        if crash_after is not None and done >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the crash/resume test only
        if progress is not None:
            progress(finished, total)


def _chunks_done(session: Session, day: date) -> tuple[int, int]:
    total = session.scalar(select(CobRun.chunks_total).where(CobRun.business_date == day)) or 0
    done_chunks = select(func.count()).select_from(CobChunk)
    finished = session.scalar(done_chunks.where(CobChunk.business_date == day, CobChunk.status == "done")) or 0
    return int(finished), int(total)


def _close_daily_loans(session: Session, sql: CobSql, day: date, chunk: CobChunk, p: dict[str, Any]) -> int:
    """Simple-interest loans accrue on each day's actual principal, which the set-based steps do not model:
    each is locked and re-projected through the loan write path, which posts what the books lack (accrual,
    late fees) and rewrites its snapshot — the same code a payment runs, so the two can never disagree."""
    ids = list(session.scalars(text(sql.daily_in_chunk()), p))
    for loan_id in ids:
        locked = loans_repo.lock(session, loan_id)
        if locked is None or locked.loan.status != "active":
            continue
        loan = locked.loan
        interest, penalties = loan.interest_recognized, loan.penalties_outstanding
        state, _ = loan_engine.reproject(
            session, loan, day, CLOSE_OF_BUSINESS, "accrual", day, description=f"interest accrual {day.isoformat()}"
        )
        accrued = state.totals.interest_recognized - interest
        chunk.interest_accrued += accrued
        chunk.interest_by_currency = add_amounts(chunk.interest_by_currency, {loan.currency: accrued})
        fee = state.penalties_outstanding - penalties
        if fee > 0:
            chunk.late_fees_charged += fee
            chunk.late_fee_count += 1
            chunk.late_fees_by_currency = add_amounts(chunk.late_fees_by_currency, {loan.currency: fee})
    return len(ids)


def _range(chunk: CobChunk) -> dict[str, Any]:
    return {"lo": chunk.seq_lo, "hi": chunk.seq_hi, "rem": chunk.seq_rem}


def _close_chunk(session: Session, sql: CobSql, day: date, chunk: CobChunk) -> None:
    if chunk.seq_hi is None or chunk.seq_rem is None:
        raise RuntimeError(
            f"close of business for {day.isoformat()} was started before migration 0017 (chunks of loan ids): "
            "finish it with the version that started it"
        )
    p = {"d": day, **_range(chunk)}
    chunk.interest_accrued = chunk.late_fees_charged = chunk.late_fee_count = 0
    chunk.interest_by_currency, chunk.late_fees_by_currency = {}, {}
    chunked, daily_count = session.execute(text(sql.lock_and_count()), p).one()
    daily = _close_daily_loans(session, sql, day, chunk, p) if daily_count else 0
    chunk.loans_processed = daily + int(chunked)
    if chunked:
        _close_set_based(session, sql, day, chunk, p)
    # The chunk's loans are locked: no payment can change them between the writes and this check.
    chunk.out_of_balance_ids = reconcile.out_of_balance_ids(session, IN_RANGE, _range(chunk))


def _close_set_based(session: Session, sql: CobSql, day: date, chunk: CobChunk, p: dict[str, Any]) -> None:
    # Loans whose current period ended move to the next one (before reading the chunk's periods).
    session.execute(text(sql.roll_periods()), p)
    shape = session.execute(text(sql.chunk_shape()), p).all()
    products = sorted({(str(r[0]), str(r[1])) for r in shape})
    # 1. Late fees (penalties), once per installment after the grace days.
    fees = {str(cur): (int(amount), int(count)) for cur, amount, count in session.execute(text(sql.fee_totals()), p)}
    fee_total, fee_count = sum(a for a, _ in fees.values()), sum(n for _, n in fees.values())
    chunk.late_fees_by_currency = add_amounts(chunk.late_fees_by_currency, {c: a for c, (a, _) in fees.items()})
    if fee_count:
        _post_per_product(session, products, "late_fee", "late fees", sql.fee_lines(), p)
        session.execute(text(sql.charge_fees_on_loans()), p)
        session.execute(text(sql.charge_fees_on_installments()), p)
    chunk.late_fees_charged += int(fee_total)
    chunk.late_fee_count += int(fee_count)
    # 2. Interest accrual through the end of the day, by the day-count fraction of the current period.
    _ensure_fractions(session, day, [(r[2], r[3], r[4]) for r in shape if r[4] is not None])
    accrued = {str(cur): int(amount) for cur, amount in session.execute(text(sql.accrual_total()), p)}
    chunk.interest_accrued += sum(accrued.values())
    chunk.interest_by_currency = add_amounts(chunk.interest_by_currency, accrued)
    _post_per_product(session, products, "accrual", "interest accrual", sql.accrual_lines(), p)
    # 3. Ageing: delinquency bucket changes (read before the row is aged), next due; then one UPDATE books the
    # accrual on the loans and ages them (days past due, bucket, accrual status, past maturity).
    session.execute(text(sql.record_bucket_changes()), {**p, "now": utcnow()})
    session.execute(text(sql.next_due()), p)
    session.execute(text(sql.accrue_and_age()), p)


def _post_per_product(
    session: Session, products: Sequence[tuple[str, str]], kind: str, what: str, lines_sql: str, p: dict[str, Any]
) -> None:
    """The chunk's lines of one kind in one statement, into the day's entry of each product."""
    day: date = p["d"]
    entries = [
        ledger.SetEntry(product_id, _entry_id(kind, product_id, day), currency, product_id, f"{what} {day.isoformat()}")
        for product_id, currency in products
    ]
    ledger.post_entries_from_select(
        session, entries=entries, entry_type=kind, effective_date=day, lines_sql=lines_sql, params=p
    )


def _entry_id(kind: str, product_id: str, day: date) -> str:
    """One entry per product, kind and day, whichever chunk or worker posts first (CONTRACT Ledger)."""
    return str(uuid.uuid5(COB_NAMESPACE, f"{kind}:{product_id}:{day.isoformat()}"))


def _ensure_fractions(session: Session, day: date, wanted: Sequence[tuple[Any, Any, Any]]) -> None:
    """The accrual fraction at `day` of every (day count, period start, due date) the chunk's loans are in."""
    if not wanted:
        return
    have = {
        (r.day_count, r.period_start, r.due_date)
        for r in session.scalars(select(AccrualFraction).where(AccrualFraction.business_date == day))
    }
    missing: list[dict[str, object]] = []
    for day_count, raw_start, raw_due in wanted:
        start, due = _as_date(raw_start), _as_date(raw_due)
        if (day_count, start, due) in have:
            continue
        num, den = accrual_fraction(DayCount(day_count), start, due, day)
        missing.append(
            {
                "business_date": day,
                "day_count": day_count,
                "period_start": start,
                "due_date": due,
                "numerator": num,
                "denominator": den,
            }
        )
        have.add((day_count, start, due))
    if missing:
        # Several workers may meet the same period at once: the first insert wins, the values are equal.
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(AccrualFraction).values(missing).on_conflict_do_nothing())


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _fan_out(db: Database, day: date, workers: int, progress: Progress | None) -> None:
    import multiprocessing

    url = db.engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(url, day, f"{_owner()}/w{n}")) for n in range(workers)]
    for proc in procs:
        proc.start()
    while any(proc.is_alive() for proc in procs):
        time.sleep(0.5)
        if progress is not None:
            with db.session(writer=False) as session:
                finished, total = _chunks_done(session, day)
            progress(finished, total)
    failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} close-of-business worker(s) failed; rerun to resume")


def _worker_main(url: str, day: date, name: str) -> None:
    db = Database(url, pool_size=1)
    try:
        process_chunks(db, day, worker=name)
    finally:
        db.dispose()


def _finish(db: Database, day: date, started: float) -> DayResult:
    with db.transaction() as session:
        run = session.get(CobRun, day)
        assert run is not None
        chunks = session.scalars(select(CobChunk).where(CobChunk.business_date == day)).all()
        if any(c.status != "done" for c in chunks):
            raise RuntimeError(f"close of business for {day.isoformat()} has unfinished chunks; rerun to resume")
        run.loans_processed = sum(c.loans_processed for c in chunks)
        run.interest_accrued = sum(c.interest_accrued for c in chunks)
        run.late_fees_charged = sum(c.late_fees_charged for c in chunks)
        run.late_fee_count = sum(c.late_fee_count for c in chunks)
        run.interest_by_currency = add_amounts(*(c.interest_by_currency or {} for c in chunks))
        run.late_fees_by_currency = add_amounts(*(c.late_fees_by_currency or {} for c in chunks))
        run.loans_out_of_balance = len(_ledger_check(session, day, chunks))
        run.status, run.finished_at = "completed", utcnow()
        run.duration_ms = int((time.perf_counter() - started) * 1000)
        if repo.business_date(session) == day:
            repo.set_business_date(session, day + timedelta(days=1))
        if db.is_postgres:
            partitions.ensure_months(session, day + timedelta(days=1))
        idempotency.purge_expired(session)
        done = {"business_date": day.isoformat(), "loans_processed": run.loans_processed}
        cob_events.emit_day(session, day, db.is_postgres)  # late fees and delinquency of the day (outbox)
        outbox.emit_system(session, "cob.completed", {**done, "late_fee_count": run.late_fee_count})
        session.flush()
        session.expunge(run)
        return _result(run)


def last_run(db: Database) -> CobRun | None:
    with db.session(writer=False) as session:
        run = session.scalars(select(CobRun).order_by(CobRun.business_date.desc()).limit(1)).first()
        if run is not None:
            session.expunge(run)
        return run
