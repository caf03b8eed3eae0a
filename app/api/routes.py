"""Every router the API serves, in one list."""

from fastapi import FastAPI

from app.api import service_routes
from app.borrowers import router as borrowers
from app.identity import router as identity
from app.products import router as products

ROUTERS = (service_routes.router, identity.router, borrowers.router, products.router)


def include_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
