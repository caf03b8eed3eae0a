"""Servicing instruments as projection events (CONTRACT "Servicing instruments"): ad-hoc charges, waivers,
goodwill credits and chargebacks. Pure data plus the table of statuses each one may be booked in; the
projection (`servicing.py`) evaluates them in date order like payments, so backdating and reversal re-derive
them like everything else.

Rules (README "Servicing instruments"):
- A charge is a fee owed from its due date, added to the `fees` of the installment whose period holds that
  date (the first installment due on or after it; the last one when the date is past maturity).
- A waiver forgives owed amounts of one bucket oldest installment first: fees and penalties as charged,
  interest of installments already due (interest of the running period is not owed yet). The projection never
  waives more than is owed at the waiver's date; the service refuses a request that would (422).
- A goodwill credit is money the lender pays on the borrower's behalf: allocated exactly like a payment; the
  books debit goodwill expense instead of cash.
- A chargeback returns money of a repayment to its payer: a refund of that money, taken from a credit balance
  first, the rest principal owed again (with the installment falling due next, or at once when none is left;
  a paid-off loan reopens) — the same rule as a refund no longer covered.
"""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.domain.errors import InvalidTransition


class WaiverBucket(StrEnum):
    penalties = "penalties"
    fees = "fees"
    interest = "interest"


@dataclass(frozen=True)
class Charge:
    seq: int
    date: date  # the due date: the fee is owed from the end of it
    amount: int


@dataclass(frozen=True)
class Waiver:
    seq: int
    date: date
    bucket: WaiverBucket
    amount: int


@dataclass(frozen=True)
class Chargeback:
    seq: int
    date: date
    amount: int


class Instrument(StrEnum):
    """Loan actions of this module, named as the event log and the transactions list name them."""

    charge = "charge"
    waiver = "waiver"
    goodwill_credit = "goodwill_credit"
    chargeback = "chargeback"


# Statuses in which each instrument may be booked. Charges, waivers and credits act on what an open loan owes;
# a chargeback can also reopen a paid-off loan (the card payment that closed it was disputed).
INSTRUMENT_STATUSES: dict[Instrument, frozenset[str]] = {
    Instrument.charge: frozenset({"active"}),
    Instrument.waiver: frozenset({"active"}),
    Instrument.goodwill_credit: frozenset({"active"}),
    Instrument.chargeback: frozenset({"active", "closed", "overpaid"}),
}

# What the verb is called in an error message ("cannot <verb> a closed loan").
_VERBS = {
    Instrument.charge: "charge",
    Instrument.waiver: "waive",
    Instrument.goodwill_credit: "credit",
    Instrument.chargeback: "charge back",
}


def check_instrument(status: str, instrument: Instrument, allowed: list[str]) -> None:
    """Refuse an instrument on a loan in a status it does not apply to (409 with the allowed actions)."""
    if status not in INSTRUMENT_STATUSES[instrument]:
        raise InvalidTransition(status, _VERBS[instrument], allowed)


def instruments_allowed(status: str) -> list[str]:
    return [i.value for i, statuses in INSTRUMENT_STATUSES.items() if status in statuses]
