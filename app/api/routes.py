"""Every router the API serves, in one list."""

from fastapi import FastAPI

from app.api import service_routes
from app.borrowers import router as borrowers
from app.console import router as console
from app.events import router as events
from app.identity import router as identity
from app.ledger import router as ledger
from app.loans import instruments_router, modifications_router
from app.loans import router as loans
from app.operations import router as operations
from app.payments import router as payments
from app.products import router as products
from app.reports import router as reports
from app.schedules import router as schedules

ROUTERS = (
    service_routes.router,
    identity.router,
    borrowers.router,
    products.router,
    schedules.router,
    loans.router,
    instruments_router.router,
    modifications_router.router,
    ledger.router,
    operations.router,
    reports.router,
    events.router,
    payments.router,
)


def include_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    console.mount(app)  # the operations console at /console (HTML pages + its static files)
