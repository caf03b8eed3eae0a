from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import CurrentUser, DbDep
from app.operations import service

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


class BusinessDateOut(BaseModel):
    business_date: date


@router.get("/business-date", response_model=BusinessDateOut, summary="The lender's current business date")
def get_business_date(db: DbDep, principal: CurrentUser) -> BusinessDateOut:
    return BusinessDateOut(business_date=service.get_business_date(db, principal))
