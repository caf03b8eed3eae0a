"""`?known_at=K` (CONTRACT "Ledger time"): the events in force as the system knew them at the end of business
date K — events booked later are left out, and a reversal booked later has not happened yet."""

from datetime import date

from app.domain.servicing import Payment
from app.loans.models import LoanEvent
from app.loans.terms import domain_events

D = date


def event(seq: int, kind: str, on: date, booked: date, reversed_by: int | None = None) -> LoanEvent:
    return LoanEvent(loan_id="l", seq=seq, type=kind, effective_date=on, booked_on=booked, amount=100, payload={},
                     reversed_by_seq=reversed_by)


LOG = [
    event(1, "disbursed", D(2025, 1, 1), D(2025, 1, 1)),
    event(2, "payment", D(2025, 2, 1), D(2025, 2, 1), reversed_by=4),  # reversed, the reversal booked 02-13
    event(3, "payment", D(2025, 2, 5), D(2025, 2, 12)),  # backdated: dated 02-05, booked 02-12
    event(4, "reversal", D(2025, 2, 13), D(2025, 2, 13)),
]


def seqs(known_at: date | None) -> list[int]:
    return [e.seq for e in domain_events(LOG, known_at) if isinstance(e, Payment)]


def test_events_as_known_at_the_end_of_a_business_date() -> None:
    assert seqs(None) == [3]  # as now known: the first payment reversed, the backdated one in force
    assert seqs(D(2025, 2, 11)) == [2]  # the backdated payment not yet entered, the first not yet reversed
    assert seqs(D(2025, 2, 12)) == [2, 3]
    assert seqs(D(2025, 2, 13)) == [3]
    assert seqs(D(2025, 1, 31)) == []
