"""Close of business use cases (the business date itself lives in app/business_calendar)."""

from datetime import date

from app.database import Database
from app.identity.access import Permission, Principal
from app.operations import cob
from app.operations.cob import DayResult
from app.operations.models import CobRun


def close_of_business(db: Database, principal: Principal, through: date | None) -> list[DayResult]:
    principal.require(Permission.close_of_business)
    return cob.close_through(db, through)


def last_close(db: Database, principal: Principal) -> CobRun | None:
    principal.require(Permission.read)
    return cob.last_run(db)


def books_currency(db: Database) -> str:
    """The currency close-of-business totals are shown in: the books' only currency (USD when mixed/empty)."""
    from app.ledger import repository as ledger_repo

    with db.session(writer=False) as session:
        present = ledger_repo.currencies_in_books(session)
    return present[0] if len(present) == 1 else "USD"
