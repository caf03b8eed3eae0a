"""Imports every feature's tables so Alembic and tests see the whole schema."""

from app.audit.models import AuditRecord
from app.borrowers.models import Borrower
from app.business_calendar.models import BusinessCalendar
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from app.idempotency.models import IdempotencyKey
from app.identity.models import Branch, User
from app.ledger.models import JournalEntry, JournalLine, LedgerAccount
from app.loans.models import DelinquencyChange, Loan, LoanEvent, LoanInstallment, LoanTransaction
from app.operations.models import AccrualFraction, CobChunk, CobRun
from app.payments.models import PaymentBatch, PaymentBatchRow, PayoffQuoteRecord
from app.products.models import Product

__all__ = [
    "AccrualFraction",
    "AuditRecord",
    "Borrower",
    "Branch",
    "BusinessCalendar",
    "CobChunk",
    "CobRun",
    "DelinquencyChange",
    "IdempotencyKey",
    "JournalEntry",
    "JournalLine",
    "LedgerAccount",
    "Loan",
    "LoanEvent",
    "LoanInstallment",
    "LoanTransaction",
    "OutboxEvent",
    "PaymentBatch",
    "PaymentBatchRow",
    "PayoffQuoteRecord",
    "Product",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
