"""`loanctl seed-demo`: a small lender to click through — a demo branch, one user per role, two products, a few
borrowers and loans in several states. Everything goes through the same service functions the API calls (as the
demo administrator), so the demo books are exactly what real use would post."""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from app.borrowers import service as borrowers
from app.borrowers.schemas import BorrowerCreate
from app.core.config import Settings
from app.database import Database
from app.domain.calendar import DayCount, Frequency
from app.domain.money import currency, from_minor
from app.domain.schedule import Amortization, InterestMethod
from app.identity import service as identity
from app.identity.access import Principal, Role
from app.identity.schemas import BranchCreate
from app.loans import service as loans
from app.loans import servicing
from app.loans.schemas import ApproveIn, DisburseIn, LoanCreate, PaymentIn, ReasonIn, WithdrawIn, WriteOffIn
from app.products import service as products
from app.products.schemas import LateFeeIn, ProductCreate

DEMO_BRANCH = "DEMO"
ROLES = (Role.admin, Role.manager, Role.officer, Role.auditor)
IDEMPOTENCY_TTL = timedelta(hours=24)

MONTHLY = ProductCreate(
    code="DEMO-ANNUITY-M",
    name="Personal loan, monthly annuity 12 %",
    currency="USD",
    min_principal=Decimal("100.00"),
    max_principal=Decimal("20000.00"),
    min_term=3,
    max_term=36,
    annual_rate_percent=Decimal(12),
    min_rate_percent=Decimal(8),
    max_rate_percent=Decimal(24),
    frequency=Frequency.monthly,
    amortization=Amortization.equal_installments,
    interest_method=InterestMethod.declining_balance,
    day_count=DayCount.thirty_360,
    late_fee=LateFeeIn(amount=Decimal("10.00"), grace_days=5),
)
WEEKLY = ProductCreate(
    code="DEMO-FLAT-W",
    name="Micro loan, weekly flat 24 %",
    currency="USD",
    min_principal=Decimal("50.00"),
    max_principal=Decimal("2000.00"),
    min_term=4,
    max_term=26,
    annual_rate_percent=Decimal(24),
    frequency=Frequency.weekly,
    amortization=Amortization.equal_installments,
    interest_method=InterestMethod.flat,
    day_count=DayCount.thirty_360,
    late_fee=LateFeeIn(percent_of_overdue=Decimal(2), grace_days=3),
)
BORROWERS = (
    ("Amina", "Okafor", "amina.okafor@example.com"),
    ("Bruno", "Silva", "bruno.silva@example.com"),
    ("Chen", "Wei", "chen.wei@example.com"),
    ("Dana", "Kowalski", "dana.kowalski@example.com"),
    ("Emeka", "Nwosu", "emeka.nwosu@example.com"),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    password: str | None  # None: the user already existed and keeps its password


@dataclass
class DemoSeed:
    """What seed-demo did; `skipped` when the demo branch already existed (nothing was changed)."""

    skipped: bool
    users: list[DemoUser] = field(default_factory=list)
    products: dict[str, str] = field(default_factory=dict)  # code -> id
    borrowers: list[str] = field(default_factory=list)
    loans: dict[str, str] = field(default_factory=dict)  # status -> loan id


def seed_demo(db: Database, settings: Settings, password: str | None = None) -> DemoSeed:
    """Seed the demo lender unless the demo branch exists. `password` for every user, or one generated each."""
    if identity.get_branch_by_code(db, DEMO_BRANCH) is not None:
        return DemoSeed(skipped=True)
    seed = DemoSeed(skipped=False)
    admin = _user(db, seed, Role.admin, password)
    branch = identity.create_branch(db, admin, BranchCreate(code=DEMO_BRANCH, name="Demo branch"))
    for role in ROLES[1:]:
        _user(db, seed, role, password)
    for product in (MONTHLY, WEEKLY):
        seed.products[product.code] = products.create_product(db, admin, product).id
    for first, last, email in BORROWERS:
        data = BorrowerCreate(branch_id=branch.id, first_name=first, last_name=last, email=email)
        seed.borrowers.append(borrowers.create_borrower(db, settings, admin, data).id)
    _loans(db, admin, seed)
    return seed


def _user(db: Database, seed: DemoSeed, role: Role, password: str | None) -> Principal:
    secret = password or identity.generate_password()
    branch = None if role == Role.admin else DEMO_BRANCH
    user, created = identity.ensure_user(db, f"demo-{role.value}", secret, role, branch)
    seed.users.append(DemoUser(user.username, role, secret if created else None))
    return Principal(user.id, user.username, Role(user.role), user.branch_id)


def _loans(db: Database, admin: Principal, seed: DemoSeed) -> None:
    monthly, weekly = seed.products[MONTHLY.code], seed.products[WEEKLY.code]
    b = seed.borrowers

    def submit(borrower: str, product: str, principal: str, term: int) -> str:
        body = LoanCreate(borrower_id=borrower, product_id=product, principal=Decimal(principal), term=term)
        return loans.submit(db, admin, body, dry_run=False).loan.id

    def active(borrower: str, product: str, principal: str, term: int) -> str:
        loan_id = submit(borrower, product, principal, term)
        loans.approve(db, admin, loan_id, ApproveIn(note="demo"), None, False)
        loans.disburse(db, admin, loan_id, DisburseIn(), None, None, False, timedelta(hours=48))
        return loan_id

    def pay(loan_id: str, amount: Decimal) -> None:
        servicing.record_payment(
            db, admin, loan_id, PaymentIn(amount=amount, channel="cash"), None, None, False, IDEMPOTENCY_TTL
        )

    seed.loans["submitted"] = submit(b[0], monthly, "1500.00", 12)
    approved = submit(b[1], weekly, "300.00", 10)
    loans.approve(db, admin, approved, ApproveIn(approved_principal=Decimal("250.00"), note="demo"), None, False)
    seed.loans["approved"] = approved

    seed.loans["active"] = active(b[2], monthly, "2400.00", 24)
    pay(seed.loans["active"], Decimal("150.00"))

    closed = active(b[3], weekly, "500.00", 8)
    quote = servicing.payoff(db, admin, closed, None)
    pay(closed, from_minor(quote.state.total_outstanding, currency(quote.loan.currency)))
    seed.loans["closed"] = closed

    written_off = active(b[4], monthly, "1000.00", 12)
    servicing.write_off(
        db, admin, written_off, WriteOffIn(reason="demo: borrower unreachable"), None, None, False, IDEMPOTENCY_TTL
    )
    seed.loans["written_off"] = written_off

    rejected = submit(b[0], weekly, "400.00", 10)
    loans.reject(db, admin, rejected, ReasonIn(reason="demo: income not verified"), None, False)
    seed.loans["rejected"] = rejected
    withdrawn = submit(b[1], monthly, "800.00", 12)
    loans.withdraw(db, admin, withdrawn, WithdrawIn(reason="demo: borrower changed their mind"), None, False)
    seed.loans["withdrawn"] = withdrawn
