"""Journal entries before they are posted: pure values with the double-entry invariant checked up front."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date


class UnbalancedEntry(Exception):
    """A programming error: a journal entry whose debits and credits differ must never be posted."""


@dataclass(frozen=True)
class LineDraft:
    account_code: str
    debit: int
    credit: int
    loan_id: str | None = None


@dataclass(frozen=True)
class EntryDraft:
    entry_type: str
    currency: str
    effective_date: date
    lines: Sequence[LineDraft]
    loan_id: str | None = None
    product_id: str | None = None
    transaction_id: str | None = None
    reversal_of: str | None = None
    description: str = ""
    created_by: str | None = None
    # The business date it is booked on (None: the current business date); effective_date is the value date.
    booking_date: date | None = None

    @property
    def total_debit(self) -> int:
        return sum(line.debit for line in self.lines)

    @property
    def total_credit(self) -> int:
        return sum(line.credit for line in self.lines)


def check_balanced(entry: EntryDraft) -> None:
    if not entry.lines:
        raise UnbalancedEntry("a journal entry needs at least one line")
    for line in entry.lines:
        if line.debit < 0 or line.credit < 0 or (line.debit == 0) == (line.credit == 0):
            raise UnbalancedEntry(f"line on {line.account_code} must be a positive debit or a positive credit")
    if entry.total_debit != entry.total_credit:
        raise UnbalancedEntry(f"debits {entry.total_debit} != credits {entry.total_credit}")


def reversal(entry: EntryDraft, original_id: str, effective_date: date, description: str) -> EntryDraft:
    """The opposite entry: every debit becomes a credit and vice versa."""
    flipped = [LineDraft(ln.account_code, ln.credit, ln.debit, ln.loan_id) for ln in entry.lines]
    return replace(
        entry, lines=flipped, reversal_of=original_id, effective_date=effective_date, description=description
    )
