from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import created_at_column, id_column
from app.database import Base


class Product(Base):
    """A loan product: the limits and defaults a loan copies at submission. Immutable once created.

    Money is stored as integer minor units of `currency`; rates exactly, as integer micro-percent
    (percent x 10^6: 7.5 % -> 7_500_000). Enums are stored as their string values.
    """

    __tablename__ = "products"

    id: Mapped[str] = id_column()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    min_principal_minor: Mapped[int] = mapped_column(BigInteger)
    max_principal_minor: Mapped[int] = mapped_column(BigInteger)
    min_term: Mapped[int] = mapped_column(Integer)
    max_term: Mapped[int] = mapped_column(Integer)
    annual_rate_e6: Mapped[int] = mapped_column(BigInteger)
    min_rate_e6: Mapped[int] = mapped_column(BigInteger)
    max_rate_e6: Mapped[int] = mapped_column(BigInteger)
    frequency: Mapped[str] = mapped_column(String(16))
    amortization: Mapped[str] = mapped_column(String(32))
    interest_method: Mapped[str] = mapped_column(String(32))
    day_count: Mapped[str] = mapped_column(String(16))
    grace_principal_periods: Mapped[int] = mapped_column(Integer, default=0)
    late_fee_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    late_fee_percent_e6: Mapped[int | None] = mapped_column(BigInteger)
    late_fee_grace_days: Mapped[int] = mapped_column(Integer, default=0)
    allocation_order: Mapped[list[str]] = mapped_column(JSON)
    prepayment: Mapped[str] = mapped_column(String(24), default="reduce_term")
    interest_recalculation: Mapped[str] = mapped_column(String(8), default="none")
    charges: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # ProductCharge.to_json, immutable
    multi_disbursement: Mapped[bool] = mapped_column(Boolean, default=False)  # tranches (issue 13)
    frequency_interval: Mapped[int] = mapped_column(Integer, default=1)  # every N periods of `frequency`
    non_accrual_after_days: Mapped[int | None] = mapped_column(Integer)  # CONTRACT "Ledger time"
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()
