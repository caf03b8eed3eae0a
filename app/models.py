"""Imports every feature's tables so Alembic and tests see the whole schema."""

from app.identity.models import Branch, User
from app.operations.models import BusinessCalendar

__all__ = ["Branch", "BusinessCalendar", "User"]
