"""Business date (the lender's 'today', advanced only by close of business)."""

from datetime import date

from app.database import Database
from app.identity.access import Permission, Principal
from app.operations import repository as repo


def business_date(db: Database) -> date:
    with db.session(writer=False) as session:
        return repo.business_date(session)


def get_business_date(db: Database, principal: Principal) -> date:
    principal.require(Permission.read)
    return business_date(db)
