from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.pagination import paginate
from app.products.models import Product


def get_product(session: Session, product_id: str) -> Product | None:
    if "\x00" in product_id:  # no such id can exist, and PostgreSQL refuses NUL in text parameters
        return None
    return session.get(Product, product_id)


def get_product_by_code(session: Session, code: str) -> Product | None:
    return session.scalars(select(Product).where(Product.code == code)).first()


def list_products(
    session: Session, is_active: bool | None, cursor: str | None, limit: int
) -> tuple[Sequence[Product], str | None]:
    stmt = select(Product)
    if is_active is not None:
        stmt = stmt.where(Product.is_active == is_active)
    return paginate(session, stmt, Product.id, cursor, limit)
