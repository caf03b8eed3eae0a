"""Set-based seeding of active loans for the close-of-business benchmark (bench_cob.py).

The book: one branch, one borrower per 10 loans, three products (30/360 with a fixed late fee, actual/365
with a 5 % late fee, 30/360 with a 2 % late fee), and N active 12-month annuities at 12 % disbursed over the
last 300 days, principal 1,000.00 … 50,000.00. Every loan's snapshot is what `engine.write_snapshot` would
hold at the end of the day before the COB date: installments due by then are paid, except on about 5 % of
loans whose last 1, 2 or 4 due installments are unpaid (late fees already charged where their trigger date
has passed, so the COB date charges only the fees that fall due on it). `interest_recognized` is exact:
installments due + the half-up share of the current one by the domain's own accrual fraction.

PostgreSQL is seeded with INSERT … SELECT FROM generate_series joined to small precomputed tables (the
schedule of every principal from the domain's generate_schedule, dates per disbursement offset); SQLite is filled by copying a PostgreSQL seed of the wanted size through SQLAlchemy
Core, so both engines close the very same book."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine, select

from app.domain.calendar import DayCount
from app.domain.servicing import accrual_fraction
from app.ledger.accounts import DEFAULT_ACCOUNTS

BRANCH_ID = "00000000-0000-4000-8000-0000000b0001"
LOANS_PER_BORROWER = 10
ALLOCATION = '["penalties", "fees", "interest", "principal"]'
# (index, code, day count, fixed late fee in minor units, late fee micro-percent, grace days)
PRODUCTS = (
    (0, "BENCH-A", "30/360", 2_500, None, 5),
    (1, "BENCH-B", "actual/365", None, 5_000_000, 10),
    (2, "BENCH-C", "30/360", None, 2_000_000, 3),
)


def product_id(index: int) -> str:
    return f"00000000-0000-4000-8000-00000000c{index:03d}"


def uuid_sql(prefix: str, expr: str) -> str:
    """A uuid-shaped string from md5(prefix || expr): random order like uuid4, reproducible."""
    return f"md5('{prefix}' || ({expr})::text)::uuid::text"


AMOUNTS = 4_900  # distinct principals: 1,000.00 + k × 10.00, k < AMOUNTS
DAYS_BACK = 300  # disbursed 1..DAYS_BACK days before the COB date

# Each loan g picks its principal (k), its disbursement offset (o), its product and how many of its last due
# installments are unpaid (dq). Schedules are precomputed per principal (amount arrays with prefix sums:
# cum_x[k + 1] = sum of the first k rows), dates and fractions per (offset, product), fees per (principal,
# product), so the 1M-row statements are hash joins and array subscripts.
PICK = f"""
FROM (SELECT g, {uuid_sql("loan", "g")} AS id, ((g * 104729) %% {AMOUNTS})::int AS k,
        (1 + (g * 7919) %% {DAYS_BACK})::int AS o, (g %% 3)::int AS pidx,
        CASE WHEN g %% 211 = 0 THEN 4 WHEN g %% 97 = 0 THEN 2 WHEN g %% 29 = 0 THEN 1 ELSE 0 END AS dq
      FROM generate_series(1, %(n)s::bigint) g OFFSET 0) x
JOIN bench_amounts am ON am.k = x.k
JOIN bench_dates dt ON dt.o = x.o AND dt.pidx = x.pidx
JOIN bench_fees fe ON fe.k = x.k AND fe.pidx = x.pidx
JOIN bench_products pr ON pr.idx = x.pidx
CROSS JOIN LATERAL (SELECT dt.nd - LEAST(x.dq, dt.nd) AS pc, LEAST(dt.m, dt.nd) AS lm) s
"""

DATES = """
CREATE TABLE bench_dates AS
SELECT o, pr.idx AS pidx, pr.day_count, array_agg(r.start ORDER BY r.j) AS start, array_agg(r.due ORDER BY r.j) AS due,
  (count(*) FILTER (WHERE r.due <= %(y)s::date))::int AS nd,
  (count(*) FILTER (WHERE r.due + pr.late_fee_grace_days + 1 <= %(y)s::date))::int AS m,
  1::bigint AS num, 1::bigint AS den
FROM generate_series(1, %(days)s) o
CROSS JOIN bench_products pr
CROSS JOIN LATERAL (SELECT j, (%(d)s::date - o + make_interval(months => j - 1))::date AS start,
                           (%(d)s::date - o + make_interval(months => j))::date AS due
                    FROM generate_series(1, 12) j) r
GROUP BY o, pr.idx, pr.day_count
"""

FEES = """
CREATE TABLE bench_fees AS
SELECT am.k, pr.idx AS pidx, array_agg(f.fee ORDER BY f.j) AS fee,
  array_prepend(0::bigint, array_agg(f.cum ORDER BY f.j)) AS cum_fee
FROM bench_amounts am CROSS JOIN bench_products pr
CROSS JOIN LATERAL (
  SELECT j, fee, SUM(fee) OVER (ORDER BY j) AS cum FROM (
    SELECT j, CASE WHEN pr.late_fee_amount_minor IS NOT NULL THEN pr.late_fee_amount_minor
      ELSE ((am.principal[j] + am.interest[j]) / 100000000) * pr.late_fee_percent_e6
        + (2 * ((am.principal[j] + am.interest[j]) %% 100000000) * pr.late_fee_percent_e6 + 100000000) / 200000000
      END AS fee
    FROM generate_series(1, 12) j) t) f
GROUP BY am.k, pr.idx
"""

INSERT_LOANS = f"""
INSERT INTO loans (id, branch_id, borrower_id, product_id, currency, status, version, requested_principal,
  approved_principal, disbursed_principal, annual_rate_e6, term, frequency, amortization, interest_method, day_count,
  grace_principal_periods, late_fee_amount_minor, late_fee_percent_e6, late_fee_grace_days, allocation_order,
  accounts, expected_disbursement_date, first_payment_date, submitted_on, approved_on, disbursement_date,
  maturity_date, snapshot_date, installment_amount, principal_outstanding, interest_outstanding, fees_outstanding,
  penalties_outstanding, credit_balance, interest_recognized, days_past_due, delinquency_bucket, next_due_date,
  next_due_amount, past_maturity, event_seq, created_at, updated_at, current_period_start, current_due_date,
  current_period_interest, interest_before_current, oldest_unpaid_due_date, projection_state, latest_event_date)
SELECT x.id, %(branch)s, {uuid_sql("borrower", f"(x.g - 1) / {LOANS_PER_BORROWER} + 1")}, pr.id,
  'USD', 'active', 1 + dt.nd, am.p, am.p, am.p, 12000000, 12, 'monthly', 'equal_installments', 'declining_balance',
  pr.day_count, 0, pr.late_fee_amount_minor, pr.late_fee_percent_e6, pr.late_fee_grace_days, pr.allocation_order,
  %(accounts)s::jsonb, %(d)s::date - x.o, dt.due[1], %(d)s::date - x.o - 3, %(d)s::date - x.o - 1, %(d)s::date - x.o,
  dt.due[12], %(y)s::date, am.a, am.p - am.cum_p[s.pc + 1], v.rec - am.cum_i[s.pc + 1], 0,
  fe.cum_fee[GREATEST(s.lm, s.pc) + 1] - fe.cum_fee[s.pc + 1], 0, v.rec, v.dpd,
  CASE WHEN v.dpd <= 0 THEN 'current' WHEN v.dpd <= 30 THEN '1-30' WHEN v.dpd <= 60 THEN '31-60'
       WHEN v.dpd <= 90 THEN '61-90' ELSE '90+' END,
  dt.due[dt.nd + 1],
  am.principal[dt.nd + 1] + am.interest[dt.nd + 1] + (am.cum_p[dt.nd + 1] + am.cum_i[dt.nd + 1])
    - (am.cum_p[s.pc + 1] + am.cum_i[s.pc + 1]) + fe.cum_fee[GREATEST(s.lm, s.pc) + 1] - fe.cum_fee[s.pc + 1],
  FALSE, 1 + s.pc, now(), now(), dt.start[dt.nd + 1], dt.due[dt.nd + 1], am.interest[dt.nd + 1],
  am.cum_i[dt.nd + 1], dt.due[s.pc + 1], NULL, %(d)s::date - x.o
{PICK}
CROSS JOIN LATERAL (SELECT am.cum_i[dt.nd + 1] + (2 * am.interest[dt.nd + 1] * dt.num + dt.den) / (2 * dt.den) AS rec,
  CASE WHEN dt.due[s.pc + 1] < %(y)s::date THEN %(y)s::date - dt.due[s.pc + 1] ELSE 0 END AS dpd) v
"""

LATE = "(j > s.pc AND j <= s.lm)"
INSERT_INSTALLMENTS = f"""
INSERT INTO loan_installments (loan_id, number, period_start, due_date, principal, interest, fees, penalties,
  paid_principal, paid_interest, paid_fees, paid_penalties, late_fee_date)
SELECT x.id, j, dt.start[j], dt.due[j], am.principal[j], am.interest[j], 0,
  CASE WHEN {LATE} THEN fe.fee[j] ELSE 0 END,
  CASE WHEN j <= s.pc THEN am.principal[j] ELSE 0 END, CASE WHEN j <= s.pc THEN am.interest[j] ELSE 0 END, 0, 0,
  CASE WHEN {LATE} THEN dt.due[j] + pr.late_fee_grace_days + 1 END
{PICK}
CROSS JOIN generate_series(1, 12) j
"""


def schedules() -> list[tuple[int, int, int, list[int], list[int], list[int], list[int]]]:
    """(k, principal, installment, interest[12], principal[12], cum_i[13], cum_p[13]) in minor units, by the
    domain's schedule (12 % a year, 30/360 monthly: exactly 1 % a month)."""
    from decimal import Decimal

    from app.domain.calendar import Frequency
    from app.domain.money import currency
    from app.domain.schedule import ScheduleTerms, generate_schedule

    rows = []
    for k in range(AMOUNTS):
        principal = Decimal(1000 + 10 * k)
        schedule = generate_schedule(
            ScheduleTerms(
                principal=principal,
                annual_rate_percent=Decimal(12),
                term=12,
                frequency=Frequency.monthly,
                disbursement_date=date(2026, 1, 15),
                currency=currency("USD"),
            )
        )
        interest = [int(i.interest * 100) for i in schedule.installments]
        princ = [int(i.principal * 100) for i in schedule.installments]
        cum_i, cum_p = [0], [0]
        for i, p in zip(interest, princ, strict=True):
            cum_i.append(cum_i[-1] + i)
            cum_p.append(cum_p[-1] + p)
        rows.append((k, int(principal * 100), int(schedule.installment_amount * 100), interest, princ, cum_i, cum_p))
    return rows


def pg_dsn(url: str) -> str:
    """psycopg's conninfo from a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def bulk_load(conn: psycopg.Connection[Any], table: str, keep_constraints: bool = False) -> Iterator[None]:
    """Drop the table's indexes (and the constraints they back, unless kept: a primary key other tables
    reference cannot go) for a bulk insert, then rebuild them exactly as they were: one sorted build instead of
    millions of random B-tree inserts."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
        "WHERE i.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    if keep_constraints:
        rows = [row for row in rows if not row[2]]
    for index, _, constraint, _ in rows:
        if constraint:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
        else:
            conn.execute(f'DROP INDEX "{index}"')
    yield
    for _, index_def, constraint, constraint_def in rows:
        if constraint:
            conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_def}')
        else:
            conn.execute(index_def)


def seed_postgres(url: str, loans: int, cob_date: date, log: Callable[[str], None] = print) -> dict[str, float]:
    """Fill a freshly migrated PostgreSQL database with `loans` active loans; COB date = `cob_date`."""

    timings: dict[str, float] = {}
    y = cob_date - timedelta(days=1)
    # Every role's account, as origination writes them (loans.service): close of business reads them per loan.
    accounts = json.dumps({role.value: code for role, code in DEFAULT_ACCOUNTS.items()})
    params = {"n": loans, "d": cob_date, "y": y, "branch": BRANCH_ID, "days": DAYS_BACK, "accounts": accounts}
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '1GB'")
        # A throwaway database filled consistently by construction: skip the per-row FK trigger checks.
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "CREATE TABLE bench_products (idx int PRIMARY KEY, id varchar(36), day_count varchar(16), "
            "late_fee_amount_minor bigint, late_fee_percent_e6 bigint, late_fee_grace_days int, allocation_order json)"
        )
        for idx, code, dc, fixed, pct, grace in PRODUCTS:
            conn.execute(
                "INSERT INTO bench_products VALUES (%s, %s, %s, %s, %s, %s, %s::json)",
                (idx, product_id(idx), dc, fixed, pct, grace, ALLOCATION),
            )
            conn.execute(
                "INSERT INTO products (id, code, name, currency, min_principal_minor, max_principal_minor, min_term, "
                "max_term, annual_rate_e6, min_rate_e6, max_rate_e6, frequency, amortization, interest_method, "
                "day_count, grace_principal_periods, late_fee_amount_minor, late_fee_percent_e6, late_fee_grace_days, "
                "allocation_order, is_active, created_at) VALUES (%s, %s, %s, 'USD', 100000, 5000000, 3, 36, "
                "12000000, 6000000, 24000000, 'monthly', 'equal_installments', 'declining_balance', %s, 0, %s, %s, "
                "%s, %s::json, TRUE, now())",
                (product_id(idx), code, f"Bench product {code}", dc, fixed, pct, grace, ALLOCATION),
            )
        conn.execute(
            "INSERT INTO branches (id, code, name, created_at) VALUES (%s, 'BENCH', 'Bench branch', now())",
            (BRANCH_ID,),
        )
        started = time.perf_counter()
        conn.execute(
            f"INSERT INTO borrowers (id, branch_id, first_name, last_name, created_at, updated_at) "
            f"SELECT {uuid_sql('borrower', 'g')}, %(branch)s, 'Bench', 'Borrower ' || g, now(), now() "
            f"FROM generate_series(1, %(m)s::bigint) g",
            {"branch": BRANCH_ID, "m": (loans + LOANS_PER_BORROWER - 1) // LOANS_PER_BORROWER},
        )
        conn.execute(
            "CREATE TABLE bench_amounts (k int PRIMARY KEY, p bigint, a bigint, interest bigint[], "
            "principal bigint[], cum_i bigint[], cum_p bigint[])"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bench_amounts VALUES (%s, %s, %s, %s, %s, %s, %s)", schedules())
        conn.execute(FEES, params)
        conn.execute(DATES, params)
        current = conn.execute("SELECT o, pidx, day_count, start[nd + 1], due[nd + 1] FROM bench_dates").fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE bench_dates SET num = %s, den = %s WHERE o = %s AND pidx = %s",
                [(*accrual_fraction(DayCount(dc), st, due, y), o, pidx) for o, pidx, dc, st, due in current],
            )
        conn.execute("ANALYZE bench_amounts, bench_fees, bench_dates, bench_products")
        timings["borrowers"] = time.perf_counter() - started
        log(
            f"  seeded {loans // LOANS_PER_BORROWER:,} borrowers and the schedule tables in {timings['borrowers']:.1f} s"
        )
        started = time.perf_counter()
        with bulk_load(conn, "loans", keep_constraints=True):
            conn.execute(INSERT_LOANS, params)
        timings["loans"] = time.perf_counter() - started
        log(f"  seeded {loans:,} loans in {timings['loans']:.1f} s")
        started = time.perf_counter()
        with bulk_load(conn, "loan_installments"):
            conn.execute(INSERT_INSTALLMENTS, params)
        timings["installments"] = time.perf_counter() - started
        log(f"  seeded {12 * loans:,} installments (indexes rebuilt after the load) in {timings['installments']:.1f} s")
        started = time.perf_counter()
        conn.execute(posted_balances_sql())
        log(f"  seeded the loans' posted balances in {time.perf_counter() - started:.1f} s")
        conn.execute("UPDATE business_calendar SET business_date = %s WHERE id = 1", (cob_date,))
        conn.execute("DROP TABLE bench_amounts, bench_fees, bench_dates, bench_products")
        conn.execute("SET session_replication_role = DEFAULT")
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) loans, loan_installments, borrowers, loan_account_balances")
        timings["vacuum"] = time.perf_counter() - started
        log(f"  VACUUM ANALYZE in {timings['vacuum']:.1f} s")
    return timings


def posted_balances_sql() -> str:
    """The loans' posted balances as the history the seed stands for would have left them (every loan agrees with
    its balances, so the close's updates find their rows and its ledger check finds nothing): each balance-sheet role
    (reconcile.ROLE_BALANCES) and interest income, on the chart's default accounts (the seed maps none)."""
    from app.domain.postings import AccountRole
    from app.ledger.accounts import DEFAULT_ACCOUNTS
    from app.loans.reconcile import ROLE_BALANCES

    roles = [
        (DEFAULT_ACCOUNTS[role], f"{'-' if sign < 0 else ''}{column}") for role, (column, sign) in ROLE_BALANCES.items()
    ]
    roles.append((DEFAULT_ACCOUNTS[AccountRole.interest_income], "-interest_recognized"))
    parts = " UNION ALL ".join(
        f"SELECT id, insert_seq, '{code}' AS code, {amount} AS amount FROM loans" for code, amount in roles
    )
    # In the loans' order, as their disbursements would have inserted them (not in the order of their ids).
    return (
        f"INSERT INTO loan_account_balances (loan_id, account_code, balance) SELECT id, code, SUM(amount) "
        f"FROM ({parts}) b GROUP BY id, insert_seq, code HAVING SUM(amount) <> 0 ORDER BY insert_seq, code"
    )


def period_fractions(url: str, on: date) -> list[tuple[str, date, date, int, int]]:
    """The accrual fractions at `on` of every period the active loans are in (for the raw baseline)."""
    with psycopg.connect(pg_dsn(url)) as conn:
        periods = conn.execute(
            "SELECT DISTINCT day_count, current_period_start, current_due_date FROM loans "
            "WHERE status = 'active' AND current_due_date IS NOT NULL"
        ).fetchall()
    return [
        (dc, start, due, *accrual_fraction(DayCount(dc), start, due, on)) if on < due else (dc, start, due, 1, 1)
        for dc, start, due in periods
    ]


COPIED_TABLES = ("branches", "products", "borrowers", "loans", "loan_installments", "loan_account_balances")


def copy_to_sqlite(pg_url: str, sqlite_url: str, batch: int = 20_000) -> dict[str, int]:
    """Copy the seeded book from PostgreSQL to a migrated SQLite database (SQLAlchemy Core, typed both ways)."""
    import app.models  # noqa: F401 - registers every table
    from app.database import Base

    counts: dict[str, int] = {}
    source, target = create_engine(pg_url), create_engine(sqlite_url)
    try:
        with source.connect() as src, target.begin() as dst:
            for name in COPIED_TABLES:
                table = Base.metadata.tables[name]
                result = src.execution_options(yield_per=batch).execute(select(table))
                counts[name] = 0
                for part in result.mappings().partitions(batch):
                    dst.execute(table.insert(), [dict(row) for row in part])
                    counts[name] += len(part)
            date_row = src.exec_driver_sql("SELECT business_date FROM business_calendar WHERE id = 1").one()
            dst.exec_driver_sql(
                "UPDATE business_calendar SET business_date = ? WHERE id = 1", (date_row[0].isoformat(),)
            )
    finally:
        source.dispose()
        target.dispose()
    return counts
