"""Roles, permissions and branch scope as data. Roles are cumulative (CONTRACT: officer < manager < admin);
the auditor reads everything and writes nothing."""

from dataclasses import dataclass
from enum import StrEnum

from app.core.errors import NotFound, PermissionDenied


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    officer = "officer"
    auditor = "auditor"


class Permission(StrEnum):
    read = "read"
    borrowers_write = "borrowers.write"
    loans_originate = "loans.originate"  # submit, withdraw, disburse
    payments_write = "payments.write"
    charges_write = "charges.write"  # ad-hoc charges on a loan
    waivers_write = "waivers.write"  # waivers, goodwill credits and chargebacks: money the lender gives up
    loans_approve = "loans.approve"  # approve, reject
    loans_reverse = "loans.reverse"
    loans_write_off = "loans.write_off"
    loans_reschedule = "loans.reschedule"
    refunds_write = "refunds.write"
    close_of_business = "operations.close_of_business"
    reports_read = "reports.read"
    ledger_read = "ledger.read"
    users_admin = "users.admin"
    branches_admin = "branches.admin"
    products_admin = "products.admin"
    webhooks_admin = "webhooks.admin"


_OFFICER = frozenset(
    {
        Permission.read,
        Permission.borrowers_write,
        Permission.loans_originate,
        Permission.payments_write,
        Permission.charges_write,
    }
)
_MANAGER = _OFFICER | {
    Permission.loans_approve,
    Permission.loans_reverse,
    Permission.loans_write_off,
    Permission.loans_reschedule,
    Permission.refunds_write,
    Permission.waivers_write,
    Permission.close_of_business,
    Permission.reports_read,
    Permission.ledger_read,
}
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.officer: _OFFICER,
    Role.manager: frozenset(_MANAGER),
    Role.admin: frozenset(Permission),
    Role.auditor: frozenset({Permission.read, Permission.reports_read, Permission.ledger_read}),
}
BRANCH_BOUND_ROLES = frozenset({Role.officer})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as every service sees it."""

    user_id: str
    username: str
    role: Role
    branch_id: str | None

    @property
    def branch_scope(self) -> str | None:
        """The only branch this caller may see, or None for all branches."""
        return self.branch_id if self.role in BRANCH_BOUND_ROLES else None

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def can_see_branch(self, branch_id: str | None) -> bool:
        scope = self.branch_scope
        return scope is None or scope == branch_id

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            raise PermissionDenied(f"the {self.role} role may not do this ({permission})")

    def require_on(self, permission: Permission, branch_id: str | None, what: str) -> None:
        """Visibility first (another branch's object is simply not found), then the role (CONTRACT)."""
        if not self.can_see_branch(branch_id):
            raise NotFound(f"{what} not found")
        self.require(permission)
