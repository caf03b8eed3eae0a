"""Schedule calculator: any signed-in user may price a schedule; nothing is stored."""

from fastapi import APIRouter

from app.api.deps import CurrentUser
from app.schedules import service
from app.schedules.schemas import ExplainRequest, InterestExplanationOut, SchedulePreviewOut, ScheduleRequest

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


@router.post(
    "/preview",
    response_model=SchedulePreviewOut,
    summary="Preview a repayment schedule with its APR",
    description="Due dates from an anchor with month-end clamp, interest by the day count rounded half-up to the "
    "minor unit, residual in the last installment, Reg Z App. J APR. Conventions: docs/CONVENTIONS.md.",
)
def preview_schedule(user: CurrentUser, body: ScheduleRequest) -> SchedulePreviewOut:
    result = service.preview(body)
    return SchedulePreviewOut.of(result.schedule, result.apr_percent)


@router.post(
    "/explain",
    response_model=InterestExplanationOut,
    summary="Explain one installment's interest",
    description="The schedule the same terms produce, and for `installment_number`: opening balance × rate × "
    "day-count fraction, unrounded and rounded, and any residual the last installment absorbs.",
)
def explain_schedule_interest(user: CurrentUser, body: ExplainRequest) -> InterestExplanationOut:
    schedule, why = service.explain(body)
    return InterestExplanationOut.of(schedule, why)
