from datetime import date

from app.business_calendar import repository as repo
from app.database import Database
from app.identity.access import Permission, Principal


def business_date(db: Database) -> date:
    with db.session(writer=False) as session:
        return repo.business_date(session)


def get_business_date(db: Database, principal: Principal) -> date:
    principal.require(Permission.read)
    return business_date(db)
