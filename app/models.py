"""Imports every feature's tables so Alembic and tests see the whole schema."""

from app.borrowers.models import Borrower
from app.identity.models import Branch, User
from app.operations.models import BusinessCalendar
from app.products.models import Product

__all__ = ["Borrower", "Branch", "BusinessCalendar", "Product", "User"]
