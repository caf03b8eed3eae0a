"""CSV payment batches. Upload parses and checks the file (header, row count, each row's shape) and stores it
as rows; the events worker posts the pending rows in chunks, each row one ordinary payment through the same
service as POST /payments, keyed by its `external_id`: a row whose external_id was already posted on that loan
is a `duplicate` (nothing posted twice, so a re-upload is harmless); a bad row fails alone with its reason."""

import csv
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.csvout import csv_text
from app.core.errors import AppError, DuplicateValue, FieldError, NotFound, PayloadTooLarge, ValidationFailed
from app.core.orm import utcnow
from app.core.schemas import parse_decimal_input
from app.database import Database
from app.domain.errors import DomainError
from app.identity import repository as identity
from app.identity.access import Permission, Principal, Role
from app.loans import repository as loans
from app.loans import servicing
from app.loans.models import Loan, LoanTransaction
from app.loans.schemas import PaymentIn
from app.payments.models import PaymentBatch, PaymentBatchRow

MAX_ROWS = 50_000
MAX_BYTES = 8 * 1024 * 1024
CHANNEL = "batch"


def _fail(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed(errors, "the file is not a payment batch CSV")


def parse(raw: bytes) -> list[dict[str, str | None]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail([FieldError("body", "must be UTF-8 text")]) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("amount", "external_id") if c not in header]
    if not ({"loan_id", "account_no"} & set(header)):
        missing.append("loan_id or account_no")
    if missing:
        raise _fail([FieldError("header", f"missing column(s): {', '.join(missing)}")])
    reader.fieldnames = header
    rows: list[dict[str, str | None]] = []
    try:
        for record in reader:
            if len(rows) >= MAX_ROWS:
                raise _fail([FieldError("body", f"at most {MAX_ROWS} rows per batch")])
            rows.append({k: (v.strip() if isinstance(v, str) else None) or None for k, v in record.items() if k})
    except csv.Error as exc:
        raise _fail([FieldError("body", f"not CSV: {exc}")]) from exc
    if not rows:
        raise _fail([FieldError("body", "no data rows")])
    return rows


def _shape_error(row: dict[str, str | None], seen: dict[str, int], number: int) -> str | None:
    """What is wrong with a row on its own (the loan and the money rules are checked when it is posted)."""
    if not (row.get("loan_id") or row.get("account_no")):
        return "loan_id or account_no is required"
    external_id = row.get("external_id")
    if not external_id:
        return "external_id is required (it makes the row idempotent)"
    if len(external_id) > 100:
        return "external_id: at most 100 characters"
    if external_id in seen:
        return f"external_id repeats row {seen[external_id]} of this file"
    seen[external_id] = number
    try:
        parse_decimal_input(row.get("amount") or "")
    except ValueError as exc:
        return f"amount: {exc}"
    if row.get("date"):
        try:
            date.fromisoformat(row["date"] or "")
        except ValueError:
            return "date: must be YYYY-MM-DD"
    return None


def upload(db: Database, principal: Principal, raw: bytes, filename: str | None) -> PaymentBatch:
    principal.require(Permission.payments_write)
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge(f"a batch file may have at most {MAX_BYTES // (1024 * 1024)} MiB")
    rows = parse(raw)
    seen: dict[str, int] = {}
    values = []
    for number, row in enumerate(rows, start=1):
        error = _shape_error(row, seen, number)
        values.append(
            {
                "row_no": number,
                "loan_ref": (row.get("loan_id") or row.get("account_no") or "")[:100] or None,
                "amount": (row.get("amount") or "")[:40] or None,
                "value_date": (row.get("date") or "")[:20] or None,
                "external_id": (row.get("external_id") or "")[:100] or None,
                "status": "failed" if error else "pending",
                "error": error,
            }
        )
    failed = sum(v["status"] == "failed" for v in values)
    with db.transaction() as session:
        batch = PaymentBatch(
            status="processing" if failed < len(values) else "done",
            filename=(filename or "")[:200] or None,
            rows=len(values),
            succeeded=0,
            failed=failed,
            branch_scope=principal.branch_scope,
            created_by=principal.user_id,
        )
        if batch.status == "done":
            batch.finished_at = utcnow()
        session.add(batch)
        session.flush()
        for start in range(0, len(values), 2000):
            chunk = [{**v, "batch_id": batch.id} for v in values[start : start + 2000]]
            session.execute(insert(PaymentBatchRow), chunk)
        session.expunge(batch)
        return batch


def get(
    db: Database, principal: Principal, batch_id: str, status: str | None, after_row: int, limit: int
) -> tuple[PaymentBatch, int, Sequence[PaymentBatchRow]]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        batch = session.get(PaymentBatch, batch_id)
        if batch is None or not _visible(principal, batch):
            raise NotFound("payment batch not found")
        pending = session.scalar(
            select(func.count()).where(PaymentBatchRow.batch_id == batch.id, PaymentBatchRow.status == "pending")
        )
        stmt = select(PaymentBatchRow).where(PaymentBatchRow.batch_id == batch.id, PaymentBatchRow.row_no > after_row)
        if status is not None:
            stmt = stmt.where(PaymentBatchRow.status == status)
        rows = session.scalars(stmt.order_by(PaymentBatchRow.row_no).limit(limit)).all()
        return batch, int(pending or 0), rows


def list_batches(db: Database, principal: Principal, limit: int) -> Sequence[PaymentBatch]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        stmt = select(PaymentBatch).order_by(PaymentBatch.created_at.desc()).limit(limit)
        if principal.branch_scope is not None:
            stmt = stmt.where(PaymentBatch.branch_scope == principal.branch_scope)
        return session.scalars(stmt).all()


def _visible(principal: Principal, batch: PaymentBatch) -> bool:
    return principal.branch_scope is None or batch.branch_scope == principal.branch_scope


# --- the worker side ------------------------------------------------------------------------------------------


def process_next_chunk(db: Database, settings: Settings) -> int:
    """Post up to PAYMENT_BATCH_CHUNK_ROWS pending rows of the oldest unfinished batch; answers how many rows."""
    with db.session(writer=False) as session:
        batch = session.scalars(
            select(PaymentBatch).where(PaymentBatch.status == "processing").order_by(PaymentBatch.created_at).limit(1)
        ).first()
        if batch is None:
            return 0
        rows = session.scalars(
            select(PaymentBatchRow)
            .where(PaymentBatchRow.batch_id == batch.id, PaymentBatchRow.status == "pending")
            .order_by(PaymentBatchRow.row_no)
            .limit(settings.payment_batch_chunk_rows)
        ).all()
        user = identity.get_user(session, batch.created_by)
    if user is None:
        raise RuntimeError(f"payment batch {batch.id}: its user is gone")
    principal = Principal(user.id, user.username, Role(user.role), user.branch_id)
    ttl = timedelta(hours=settings.idempotency_key_ttl_hours)
    with db.session(writer=False) as session:
        known = _lookups(session, rows)
    by_loan: dict[str, list[PaymentBatchRow]] = {}
    for row in rows:
        by_loan.setdefault(row.loan_ref or "", []).append(row)

    def post_all(group: list[PaymentBatchRow]) -> list[Result]:
        return _post_loan_rows(db, principal, group, known, ttl)  # one loan's rows in file order

    # Different loans in parallel on PostgreSQL (row locks); SQLite has one writer at a time anyway.
    threads = settings.worker_concurrency if db.is_postgres else 1
    with ThreadPoolExecutor(threads, thread_name_prefix="batch") as pool:
        results = [r for group in pool.map(post_all, by_loan.values()) for r in group]
    _record(db, batch.id, results)
    return len(rows)


Result = tuple[int, str, str | None, str | None]  # row_no, status, transaction_id, error


@dataclass(frozen=True)
class Known:
    """What a chunk's rows refer to, read once per chunk: loans by reference, payments by external_id."""

    loans: dict[str, tuple[str, str]]  # loan_id or account_no -> (loan id, branch id)
    payments: dict[str, tuple[str, str]]  # external_id -> (transaction id, loan id)


def _lookups(session: Session, rows: Sequence[PaymentBatchRow]) -> Known:
    refs = {r.loan_ref for r in rows if r.loan_ref}
    found: dict[str, tuple[str, str]] = {}
    account_no = getattr(Loan, "account_no", None)  # CONTRACT: account_no, once loans carry one
    if account_no is not None:
        for ref, loan_id, branch_id in session.execute(
            select(account_no, Loan.id, Loan.branch_id).where(account_no.in_(refs))
        ):
            found[str(ref)] = (loan_id, branch_id)
    for loan_id, branch_id in session.execute(select(Loan.id, Loan.branch_id).where(Loan.id.in_(refs - set(found)))):
        found[loan_id] = (loan_id, branch_id)
    external_ids = {r.external_id for r in rows if r.external_id}
    payments = {
        str(ext): (tx_id, loan_id)
        for ext, tx_id, loan_id in session.execute(
            select(LoanTransaction.external_id, LoanTransaction.id, LoanTransaction.loan_id).where(
                LoanTransaction.external_id.in_(external_ids)
            )
        )
    }
    return Known(found, payments)


# At most this many of one loan's rows share a transaction (its lock is held meanwhile).
GROUP_ROWS = 50


def _post_loan_rows(
    db: Database, principal: Principal, rows: list[PaymentBatchRow], known: Known, ttl: timedelta
) -> list[Result]:
    """One loan's rows, in file order. Rows that cannot be a payment, or are already posted, are answered
    without posting; the rest go in groups of one transaction each (one lock, one commit). A group with a
    failing payment writes nothing and its rows are then posted one at a time, so each row's result is what
    posting it alone would have given."""
    results: dict[int, Result] = {}
    ready: list[tuple[PaymentBatchRow, Ready]] = []
    for row in rows:
        checked = _check(principal, row, known)
        if isinstance(checked, Ready):
            ready.append((row, checked))
        else:
            results[row.row_no] = checked
    for start in range(0, len(ready), GROUP_ROWS):
        group = ready[start : start + GROUP_ROWS]
        posted = servicing.record_payments(db, principal, group[0][1].loan_id, [r.payment for _, r in group])
        for index, (row, r) in enumerate(group):
            if posted is not None:
                results[row.row_no] = (row.row_no, "succeeded", posted[index], None)
            else:
                results[row.row_no] = _post(db, principal, row, r, ttl)
    return [results[row.row_no] for row in rows]


@dataclass(frozen=True)
class Ready:
    """A row to post: its loan and the payment it stands for."""

    loan_id: str
    payment: PaymentIn


def _check(principal: Principal, row: PaymentBatchRow, known: Known) -> Result | Ready:
    """The row's payment, or its result when it is not to be posted."""
    loan = known.loans.get(row.loan_ref or "")
    if loan is None or not principal.can_see_branch(loan[1]):
        return row.row_no, "failed", None, "loan not found"
    assert row.external_id is not None
    existing = known.payments.get(row.external_id)
    if existing is not None:
        if existing[1] == loan[0]:
            return row.row_no, "duplicate", existing[0], None
        return row.row_no, "failed", None, "external_id: already used by a payment on another loan"
    try:
        data = PaymentIn(
            amount=Decimal(row.amount or ""),
            date=date.fromisoformat(row.value_date) if row.value_date else None,
            channel=CHANNEL,
            external_id=row.external_id,
        )
    except (ValidationError, InvalidOperation, ValueError) as exc:
        return row.row_no, "failed", None, str(exc)[:500]
    return Ready(loan[0], data)


def _post(db: Database, principal: Principal, row: PaymentBatchRow, ready: Ready, ttl: timedelta) -> Result:
    assert row.external_id is not None
    loan_id = ready.loan_id
    try:
        result = servicing.record_payment(db, principal, loan_id, ready.payment, None, None, False, ttl)
    except DuplicateValue:  # posted meanwhile by someone else (another upload, the API)
        with db.session(writer=False) as session:
            tx = loans.transaction_by_external_id(session, row.external_id)
        if tx is not None and tx.loan_id == loan_id:
            return row.row_no, "duplicate", tx.id, None
        return row.row_no, "failed", None, "external_id: already used by a payment on another loan"
    except AppError as exc:
        return row.row_no, "failed", None, _reason(exc)
    except DomainError as exc:
        return row.row_no, "failed", None, str(exc)[:500]
    return row.row_no, "succeeded", str(result.body["transaction_id"]), None


def _reason(exc: AppError) -> str:
    fields = getattr(exc, "errors", None) or []
    details = "; ".join(f"{e.field}: {e.message}" for e in fields)
    return (details or exc.detail)[:500]


def _record(db: Database, batch_id: str, results: list[Result]) -> None:
    with db.transaction() as session:
        if results:
            session.execute(
                update(PaymentBatchRow),
                [
                    {"batch_id": batch_id, "row_no": n, "status": s, "transaction_id": t, "error": e}
                    for n, s, t, e in results
                ],
            )
        batch = session.get(PaymentBatch, batch_id)
        assert batch is not None
        batch.succeeded += sum(s in {"succeeded", "duplicate"} for _, s, _, _ in results)
        batch.failed += sum(s == "failed" for _, s, _, _ in results)
        pending = session.scalar(
            select(func.count()).where(PaymentBatchRow.batch_id == batch_id, PaymentBatchRow.status == "pending")
        )
        if not pending:
            batch.status, batch.finished_at = "done", utcnow()


RESULT_COLUMNS = ("row", "loan", "amount", "date", "external_id", "status", "transaction_id", "error")


def results_csv(db: Database, principal: Principal, batch_id: str) -> tuple[str, str]:
    """(CSV text, file name) of a batch's per-row results, for the API and the console alike."""
    _batch, _pending, rows = get(db, principal, batch_id, None, 0, MAX_ROWS)
    body = csv_text(
        RESULT_COLUMNS,
        (
            (r.row_no, r.loan_ref, r.amount, r.value_date, r.external_id, r.status, r.transaction_id, r.error)
            for r in rows
        ),
    )
    return body, f"payment-batch-{batch_id[:36]}-results.csv"
