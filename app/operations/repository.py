from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.operations.models import BusinessCalendar


def business_date(session: Session) -> date:
    value = session.scalars(select(BusinessCalendar.business_date).where(BusinessCalendar.id == 1)).first()
    if value is None:
        raise RuntimeError("the business calendar is not initialised: run `loanctl init-db`")
    return value


def set_business_date(session: Session, value: date) -> None:
    session.execute(update(BusinessCalendar).where(BusinessCalendar.id == 1).values(business_date=value))
