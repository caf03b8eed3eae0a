from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.business_calendar.models import BusinessCalendar


def business_date(session: Session) -> date:
    value = session.scalars(select(BusinessCalendar.business_date).where(BusinessCalendar.id == 1)).first()
    if value is None:
        raise RuntimeError("the business calendar is not initialised: run `loanctl init-db`")
    return value


def business_date_for_write(session: Session) -> date:
    """The business date, held (FOR SHARE) until the writer commits: close of business cannot move it on —
    closing the day — while a write that read it is still booking into it (it waits, and the writers after it
    read the new date). PostgreSQL only; SQLite serialises every writer already."""
    stmt = select(BusinessCalendar.business_date).where(BusinessCalendar.id == 1).with_for_update(read=True)
    value = session.scalars(stmt).first()
    if value is None:
        raise RuntimeError("the business calendar is not initialised: run `loanctl init-db`")
    return value


def set_business_date(session: Session, value: date) -> None:
    session.execute(update(BusinessCalendar).where(BusinessCalendar.id == 1).values(business_date=value))
