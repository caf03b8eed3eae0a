"""Product charges: the rules a product's `charges` must meet (422 naming the fields), and their stored form."""

from decimal import Decimal

from app.core.errors import FieldError
from app.domain.instruments import ChargeCollection, ChargeKind, FeeRule, ProductCharge
from app.domain.money import Currency, to_minor
from app.domain.servicing import InterestRecalculation
from app.products.schemas import ProductChargeIn, ProductCreate

MAX_CHARGE_PERCENT = Decimal(100)
MAX_CHARGE_AMOUNT = Decimal(999_999_999_999)


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _item_errors(index: int, c: ProductChargeIn, cur: Currency | None) -> list[FieldError]:
    at = f"charges[{index}]"
    errors = []
    if (c.amount is None) == (c.percent is None):
        errors += [
            FieldError(f"{at}.amount", "give either a flat amount or a percent, not both or neither"),
            FieldError(f"{at}.percent", "give either a flat amount or a percent, not both or neither"),
        ]
    if c.amount is not None:
        if not 0 < c.amount <= MAX_CHARGE_AMOUNT:
            errors.append(FieldError(f"{at}.amount", "must be greater than 0"))
        elif cur is not None and _decimals(c.amount) > cur.minor_units:
            errors.append(FieldError(f"{at}.amount", f"at most {cur.minor_units} decimals for {cur.code}"))
    if c.percent is not None and not 0 < c.percent <= MAX_CHARGE_PERCENT:
        errors.append(FieldError(f"{at}.percent", f"must be greater than 0 and at most {MAX_CHARGE_PERCENT}"))
    elif c.percent is not None and _decimals(c.percent) > 6:
        errors.append(FieldError(f"{at}.percent", "at most 6 decimals"))
    if c.kind != ChargeKind.disbursement and c.collection is not None:
        errors.append(FieldError(f"{at}.collection", "only disbursement charges are deducted or capitalized"))
    return errors


def charge_errors(data: ProductCreate, cur: Currency | None) -> list[FieldError]:
    errors = [e for i, c in enumerate(data.charges) for e in _item_errors(i, c, cur)]
    codes = [c.code for c in data.charges]
    for index, code in enumerate(codes):
        if code in codes[:index]:
            errors.append(FieldError(f"charges[{index}].code", f"{code!r} is used by another charge of the product"))
    if data.interest_recalculation == InterestRecalculation.daily and any(
        c.kind == ChargeKind.installment for c in data.charges
    ):
        errors += [
            FieldError("charges", "installment fees are not available with daily interest recalculation"),
            FieldError("interest_recalculation", "installment fees need interest_recalculation none"),
        ]
    return errors


def stored_charges(data: ProductCreate, cur: Currency) -> list[dict[str, object]]:
    """The stored form of charges that passed `charge_errors`."""
    return [
        ProductCharge(
            code=c.code,
            name=c.name,
            kind=c.kind,
            rule=FeeRule(None if c.amount is None else to_minor(c.amount, cur), c.percent),
            collection=(c.collection or ChargeCollection.deducted) if c.kind == ChargeKind.disbursement else None,
        ).to_json()
        for c in data.charges
    ]
