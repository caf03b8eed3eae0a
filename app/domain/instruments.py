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
- A chargeback returns money of a repayment to its payer: taken from a credit balance first, the rest principal
  owed again and due at once — an installment of its own due on the chargeback's date (servicing
  `_owe_at_once`); a paid-off loan reopens. (A refund no longer covered is owed with the installment falling
  due next instead: CONTRACT "Loans".)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from app.domain.apr import apr_percent, regular_apr_percent
from app.domain.errors import InvalidTransition
from app.domain.schedule import Schedule, half_up_div


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


# --- product charges (CONTRACT "Servicing instruments": `charges` on products, immutable with the product) ---


class ChargeKind(StrEnum):
    disbursement = "disbursement"  # at disbursement: deducted from the money paid out, or capitalized
    installment = "installment"  # added to every installment's fees
    nsf = "nsf"  # charged when a repayment is reversed with reason_code "nsf"


class ChargeCollection(StrEnum):
    deducted = "deducted"  # the borrower receives principal - fee (a prepaid finance charge in the APR)
    capitalized = "capitalized"  # added to the principal the schedule amortizes


@dataclass(frozen=True)
class FeeRule:
    """A flat amount (minor units) or a percent of a base amount, rounded half-up to the minor unit."""

    amount: int | None = None
    percent: Decimal | None = None

    def fee(self, base: int) -> int:
        if self.amount is not None:
            return self.amount
        if self.percent is None:
            return 0
        num, den = self.percent.as_integer_ratio()
        return half_up_div(base * num, den * 100)


@dataclass(frozen=True)
class ProductCharge:
    code: str
    name: str
    kind: ChargeKind
    rule: FeeRule
    collection: ChargeCollection | None = None

    def to_json(self) -> dict[str, object]:
        percent = self.rule.percent
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind.value,
            "amount": self.rule.amount,
            "percent": None if percent is None else f"{percent:f}",
            "collection": None if self.collection is None else self.collection.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> "ProductCharge":
        amount, percent, collection = data.get("amount"), data.get("percent"), data.get("collection")
        return cls(
            code=str(data["code"]),
            name=str(data["name"]),
            kind=ChargeKind(str(data["kind"])),
            rule=FeeRule(
                amount=None if amount is None else int(str(amount)),
                percent=None if percent is None else Decimal(str(percent)),
            ),
            collection=None if collection is None else ChargeCollection(str(collection)),
        )


def disbursement_fees(charges: Sequence[ProductCharge], principal: int) -> tuple[int, int]:
    """(deducted, capitalized) fees of a disbursement of `principal` (percent charges: of the principal)."""
    deducted = capitalized = 0
    for charge in charges:
        if charge.kind != ChargeKind.disbursement:
            continue
        fee = charge.rule.fee(principal)
        if charge.collection == ChargeCollection.capitalized:
            capitalized += fee
        else:
            deducted += fee
    return deducted, capitalized


def installment_fee_rules(charges: Sequence[ProductCharge]) -> tuple[FeeRule, ...]:
    return tuple(c.rule for c in charges if c.kind == ChargeKind.installment)


def nsf_fees(charges: Sequence[ProductCharge], repayment: int) -> list[tuple[ProductCharge, int]]:
    """The NSF charges for a returned repayment of `repayment` (percent charges: of the repayment)."""
    return [(c, c.rule.fee(repayment)) for c in charges if c.kind == ChargeKind.nsf]


def installment_fee(rules: Sequence[FeeRule], principal: int, interest: int) -> int:
    """An installment's fees: each rule's flat amount or percent of the installment (principal + interest)."""
    return sum(rule.fee(principal + interest) for rule in rules)


def loan_apr(
    schedule: Schedule, cash_to_borrower: int, installment_rules: Sequence[FeeRule], minor_units: int
) -> Decimal:
    """Reg Z App. J APR of a loan with charges: amount financed = what the borrower receives (principal less
    fees deducted at disbursement: prepaid finance charges, § 1026.18(b)); payments = each installment's
    total plus its installment fees (finance charges paid with it); capitalized fees are in the principal."""
    terms = schedule.terms
    scale = Decimal(1).scaleb(-minor_units)
    payments = []
    for row in schedule.installments:
        principal, interest = int(row.principal.scaleb(minor_units)), int(row.interest.scaleb(minor_units))
        fee = installment_fee(installment_rules, principal, interest)
        payments.append((row.due_date, row.total + Decimal(fee) * scale))
    financed = Decimal(cash_to_borrower) * scale
    if terms.first_payment_date is None:
        return regular_apr_percent(
            financed, [amount for _, amount in payments], terms.frequency, terms.frequency_interval
        )
    return apr_percent(
        financed,
        terms.disbursement_date,
        payments,
        terms.frequency,
        anchor_day=terms.first_payment_date.day,
        interval=terms.frequency_interval,
    )
