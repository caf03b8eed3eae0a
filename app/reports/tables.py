"""The report rows as tables (column names and JSON-ready values) from the service's results: the API renders
them as JSON items or CSV, the console as CSV downloads — one mapping for both."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from app.core.schemas import money_out

AGING = ("bucket", "loans", "principal")
DELINQUENT = (
    "loan_id",
    "branch_id",
    "borrower_id",
    "borrower_name",
    "days_past_due",
    "oldest_unpaid_due_date",
    "principal_outstanding",
    "interest_outstanding",
    "penalties_outstanding",
)
COLLECTIONS = ("date", "payments", "amount", "principal", "interest", "fees", "penalties", "overpayment", "recovery")

Table = list[list[Any]]


def aging(rows: Iterable[tuple[str, int, int]], currency: str) -> Table:
    return [[bucket, loans, money_out(principal, currency)] for bucket, loans, principal in rows]


def delinquent(rows: Iterable[Mapping[str, Any]], currency: str) -> Table:
    return [
        [
            r["id"],
            r["branch_id"],
            r["borrower_id"],
            f"{r['first_name']} {r['last_name']}",
            int(r["dpd"]),
            r["oldest_unpaid_due_date"],
            money_out(int(r["principal_outstanding"]), currency),
            money_out(int(r["interest_outstanding"]), currency),
            money_out(int(r["penalties_outstanding"]), currency),
        ]
        for r in rows
    ]


def collections(rows: Iterable[Sequence[Any]], currency: str) -> Table:
    return [
        [d if isinstance(d, date) else date.fromisoformat(str(d)), int(n)]
        + [money_out(int(v), currency) for v in amounts]
        for d, n, *amounts in rows
    ]


def items(columns: Sequence[str], table: Table) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in table]
