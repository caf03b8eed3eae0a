"""Every router the API serves, in one list."""

from fastapi import FastAPI

from app.api import service_routes
from app.identity import router as identity

ROUTERS = (service_routes.router, identity.router)


def include_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
