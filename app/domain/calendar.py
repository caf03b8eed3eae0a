"""Period arithmetic (anchor-based, month-end clamp) and day-count conventions.

Year fractions are exact: every convention reports its fraction as an integer ratio
(`fraction(start, end) -> (numerator, denominator)`), and `year_fraction` turns that ratio into a Decimal
in a 50-digit context, so no money rounding ever happens here.
"""

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Actual360",
    "Actual365Fixed",
    "ActualActualISDA",
    "DayCount",
    "DayCountConvention",
    "Frequency",
    "Thirty360US",
    "add_periods",
    "day_count",
    "days_in_month",
    "due_date",
    "due_dates",
    "is_leap",
    "max_interval",
    "months_per_period",
    "periods_per_year",
    "year_fraction_of_period",
]

_EXACT = Context(prec=50)
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    biweekly = "biweekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"


_PERIODS_PER_YEAR = {
    Frequency.daily: 365,
    Frequency.weekly: 52,
    Frequency.biweekly: 26,
    Frequency.monthly: 12,
    Frequency.quarterly: 4,
    Frequency.yearly: 1,
}
_MONTHS = {Frequency.monthly: 1, Frequency.quarterly: 3, Frequency.yearly: 12}
_DAYS = {Frequency.daily: 1, Frequency.weekly: 7, Frequency.biweekly: 14}


def periods_per_year(f: Frequency) -> int:
    """Unit periods per year: daily 365, weekly 52, biweekly 26 (Reg Z App. J (b)(5)(iv)), monthly 12,
    quarterly 4, yearly 1."""
    return _PERIODS_PER_YEAR[f]


MAX_INTERVAL_YEARS = 1


def max_interval(f: Frequency) -> int:
    """The largest `frequency_interval` for `f`: one period spans at most a year (365 days, 52 weeks, 12 months)."""
    return _PERIODS_PER_YEAR[f]


def year_fraction_of_period(f: Frequency, interval: int = 1) -> tuple[int, int]:
    """One period of every `interval` `f` as an exact year fraction: interval / periods-per-year — every 15 days
    15/365, every 4 weeks 4/52 (13 a year), every 2 months 2/12 (Reg Z App. J (b)(5)(iv): 365 / days or 52 /
    weeks unit periods a year for multiples of a day or a week)."""
    return interval, _PERIODS_PER_YEAR[f]


def months_per_period(f: Frequency) -> int | None:
    """Months in one period for month-based frequencies, None for week-based ones."""
    return _MONTHS.get(f)


def days_per_period(f: Frequency) -> int | None:
    """Days in one period for week-based frequencies, None for month-based ones."""
    return _DAYS.get(f)


def is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and is_leap(year):
        return 29
    return _MONTH_DAYS[month - 1]


def add_months(anchor: date, months: int) -> date:
    """`anchor` plus `months` calendar months, clamped to the month end (Jan 31 + 1 = Feb 28/29)."""
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    month = month0 + 1
    return date(year, month, min(anchor.day, days_in_month(year, month)))


def add_periods(anchor: date, f: Frequency, n: int, interval: int = 1) -> date:
    """The date `n` periods after `anchor`, always computed from the anchor, never chained.

    Month-based periods clamp to the month end: Jan 31 2024 + 1 month = Feb 29, + 2 months = Mar 31.
    `n` may be negative (used to measure back from a payment date, Reg Z App. J (b)(5)). A period of every
    `interval` `f` is `interval` of them, still counted from the anchor.
    """
    n *= interval
    months = _MONTHS.get(f)
    if months is not None:
        return add_months(anchor, months * n)
    return anchor + timedelta(days=_DAYS[f] * n)


def due_date(
    disbursement_date: date, f: Frequency, k: int, first_payment_date: date | None = None, interval: int = 1
) -> date:
    """Due date of installment k (1-based): first_payment_date + (k-1) periods, else disbursement + k periods."""
    if first_payment_date is not None:
        return add_periods(first_payment_date, f, k - 1, interval)
    return add_periods(disbursement_date, f, k, interval)


def due_dates(
    disbursement_date: date, f: Frequency, term: int, first_payment_date: date | None = None
) -> tuple[date, ...]:
    """All `term` due dates, each from the anchor (disbursed Jan 31 -> Feb 29 -> Mar 31 -> Apr 30)."""
    return tuple(due_date(disbursement_date, f, k, first_payment_date) for k in range(1, term + 1))


class DayCount(StrEnum):
    thirty_360 = "30/360"
    actual_365 = "actual/365"
    actual_360 = "actual/360"
    actual_actual = "actual/actual"


class DayCountConvention(Protocol):
    """A day-count convention: day count and exact year fraction between two dates (start < end)."""

    @property
    def code(self) -> DayCount: ...

    def days(self, start: date, end: date) -> int: ...

    def fraction(self, start: date, end: date) -> tuple[int, int]: ...

    def year_fraction(self, start: date, end: date) -> Decimal: ...


def _ratio_to_decimal(numerator: int, denominator: int) -> Decimal:
    return _EXACT.divide(Decimal(numerator), Decimal(denominator))


@dataclass(frozen=True, slots=True)
class Thirty360US:
    """30/360 US (NASD / "bond basis" with the February end-of-month rules).

    Source: SIA *Standard Securities Calculation Methods* (1993), 30/360 US; ISDA 2006 Definitions §4.16(f)
    for the day-31 rules. Rules, applied in order: both dates last day of February -> D2 = 30; D1 last day of
    February -> D1 = 30; D2 = 31 and D1 >= 30 -> D2 = 30; D1 = 31 -> D1 = 30.
    days = 360 (Y2 - Y1) + 30 (M2 - M1) + (D2 - D1); year fraction = days / 360.
    """

    code: DayCount = DayCount.thirty_360

    @staticmethod
    def adjusted(start: date, end: date) -> tuple[int, int, int, int, int, int]:
        """(d1, m1, y1, d2, m2, y2) after the 30/360 US adjustments."""
        d1, d2 = start.day, end.day
        start_feb_end = start.month == 2 and d1 == days_in_month(start.year, 2)
        end_feb_end = end.month == 2 and d2 == days_in_month(end.year, 2)
        if start_feb_end and end_feb_end:
            d2 = 30
        if start_feb_end:
            d1 = 30
        if d2 == 31 and d1 >= 30:
            d2 = 30
        if d1 == 31:
            d1 = 30
        return d1, start.month, start.year, d2, end.month, end.year

    def days(self, start: date, end: date) -> int:
        d1, m1, y1, d2, m2, y2 = self.adjusted(start, end)
        return 360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)

    def fraction(self, start: date, end: date) -> tuple[int, int]:
        return self.days(start, end), 360

    def year_fraction(self, start: date, end: date) -> Decimal:
        return _ratio_to_decimal(*self.fraction(start, end))


@dataclass(frozen=True, slots=True)
class Actual365Fixed:
    """Actual/365 (Fixed): actual days / 365. Source: ISDA 2006 Definitions §4.16(d)."""

    code: DayCount = DayCount.actual_365

    def days(self, start: date, end: date) -> int:
        return (end - start).days

    def fraction(self, start: date, end: date) -> tuple[int, int]:
        return self.days(start, end), 365

    def year_fraction(self, start: date, end: date) -> Decimal:
        return _ratio_to_decimal(*self.fraction(start, end))


@dataclass(frozen=True, slots=True)
class Actual360:
    """Actual/360: actual days / 360. Source: ISDA 2006 Definitions §4.16(e)."""

    code: DayCount = DayCount.actual_360

    def days(self, start: date, end: date) -> int:
        return (end - start).days

    def fraction(self, start: date, end: date) -> tuple[int, int]:
        return self.days(start, end), 360

    def year_fraction(self, start: date, end: date) -> Decimal:
        return _ratio_to_decimal(*self.fraction(start, end))


@dataclass(frozen=True, slots=True)
class ActualActualISDA:
    """Actual/Actual (ISDA): days falling in a leap year / 366 + days in a non-leap year / 365.

    Source: ISDA 2006 Definitions §4.16(b). The start date is counted, the end date is not.
    """

    code: DayCount = DayCount.actual_actual

    def days(self, start: date, end: date) -> int:
        return (end - start).days

    def split(self, start: date, end: date) -> tuple[int, int]:
        """(days in non-leap years, days in leap years) between start (included) and end (excluded)."""
        plain = leap = 0
        cursor = start
        while cursor < end:
            boundary = min(date(cursor.year + 1, 1, 1), end) if cursor.year < 9999 else end
            span = (boundary - cursor).days
            if is_leap(cursor.year):
                leap += span
            else:
                plain += span
            cursor = boundary
        return plain, leap

    def fraction(self, start: date, end: date) -> tuple[int, int]:
        plain, leap = self.split(start, end)
        numerator, denominator = plain * 366 + leap * 365, 365 * 366
        divisor = math.gcd(numerator, denominator) or 1
        return numerator // divisor, denominator // divisor

    def year_fraction(self, start: date, end: date) -> Decimal:
        return _ratio_to_decimal(*self.fraction(start, end))


_CONVENTIONS: dict[DayCount, DayCountConvention] = {
    DayCount.thirty_360: Thirty360US(),
    DayCount.actual_365: Actual365Fixed(),
    DayCount.actual_360: Actual360(),
    DayCount.actual_actual: ActualActualISDA(),
}


def day_count(dc: DayCount) -> DayCountConvention:
    """The convention object for a DayCount value."""
    return _CONVENTIONS[DayCount(dc)]
