"""Unauthenticated service endpoints: health and metrics."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import DbDep
from app.core.logging import get_logger
from app.core.metrics import render_metrics

router = APIRouter(tags=["service"])
log = get_logger(__name__)


@router.get("/health", summary="Liveness and database check", responses={503: {"description": "Database down"}})
def health(db: DbDep) -> JSONResponse:
    try:
        db.ping()
    except SQLAlchemyError as exc:
        log.warning("health_database_down", error=type(exc).__name__)
        return JSONResponse({"status": "degraded", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
