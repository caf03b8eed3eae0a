from datetime import date

from sqlalchemy import CheckConstraint, Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base


class BusinessCalendar(Base):
    """The single row holding the current business date (advanced only by close of business)."""

    __tablename__ = "business_calendar"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    business_date: Mapped[date] = mapped_column(Date)
