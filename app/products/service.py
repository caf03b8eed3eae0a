"""Product use cases. Products are immutable once created: a loan copies the product's terms when it is
submitted, so no later product change could alter a booked loan."""

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from app.core.errors import DuplicateValue, NotFound, ValidationFailed
from app.core.logging import get_logger
from app.database import Database
from app.domain.money import currency, to_minor
from app.identity.access import Permission, Principal
from app.products import repository as repo
from app.products import rules
from app.products.charges import charge_errors, stored_charges
from app.products.models import Product
from app.products.schemas import ProductCreate, rate_to_e6

log = get_logger("app.products")


def _new_product(data: ProductCreate) -> Product:
    """The stored form of a request that passed every rule (so every amount is exact in its currency)."""
    cur = currency(data.currency)
    fee = data.late_fee
    return Product(
        code=data.code,
        name=data.name,
        currency=cur.code,
        min_principal_minor=to_minor(data.min_principal, cur),
        max_principal_minor=to_minor(data.max_principal, cur),
        min_term=data.min_term,
        max_term=data.max_term,
        annual_rate_e6=rate_to_e6(data.annual_rate_percent),
        min_rate_e6=rate_to_e6(data.effective_min_rate),
        max_rate_e6=rate_to_e6(data.effective_max_rate),
        frequency=data.frequency.value,
        frequency_interval=data.frequency_interval,
        amortization=data.amortization.value,
        interest_method=data.interest_method.value,
        day_count=data.day_count.value,
        grace_principal_periods=data.grace_principal_periods,
        late_fee_amount_minor=None if fee.amount is None else to_minor(fee.amount, cur),
        late_fee_percent_e6=None if fee.percent_of_overdue is None else rate_to_e6(fee.percent_of_overdue),
        late_fee_grace_days=fee.grace_days,
        allocation_order=[bucket.value for bucket in data.allocation_order],
        prepayment=data.prepayment.value,
        interest_recalculation=data.interest_recalculation.value,
        charges=stored_charges(data, cur),
        multi_disbursement=data.multi_disbursement,
        non_accrual_after_days=data.non_accrual_after_days,
        is_active=True,
    )


def create_product(db: Database, principal: Principal, data: ProductCreate) -> Product:
    principal.require(Permission.products_admin)
    errors = rules.field_errors(data)
    errors += charge_errors(data, rules.product_currency(data))
    if errors:
        raise ValidationFailed(errors)
    try:
        with db.transaction() as session:
            existing = repo.get_product_by_code(session, data.code)
            if existing is not None:
                raise DuplicateValue("code", existing.id, "product")
            product = _new_product(data)
            session.add(product)
            session.flush()
    except IntegrityError as exc:
        with db.session(writer=False) as session:
            raced = repo.get_product_by_code(session, data.code)
        if raced is None:
            raise
        raise DuplicateValue("code", raced.id, "product") from exc
    log.info("product_created", product_id=product.id, code=product.code)
    return product


def list_products(
    db: Database, principal: Principal, is_active: bool | None, cursor: str | None, limit: int
) -> tuple[Sequence[Product], str | None]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        return repo.list_products(session, is_active, cursor, limit)


def get_product(db: Database, principal: Principal, product_id: str) -> Product:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        product = repo.get_product(session, product_id)
        if product is None:
            raise NotFound("product not found")
        return product
