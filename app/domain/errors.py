"""Domain errors: they carry meaning, never HTTP status codes (the API maps them at the edge)."""


class DomainError(Exception):
    """Base class of every error raised by the pure domain."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DomainValidationError(DomainError):
    """Bad input; `field` names the request field it concerns (e.g. "principal")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidTransition(DomainError):
    """The action is not allowed in the loan's current status (the lifecycle table says which are)."""

    title = "Invalid state transition"
    slug = "invalid-transition"

    def __init__(self, status: str, action: str, allowed_actions: list[str]) -> None:
        super().__init__(f"cannot {action.replace('_', ' ')} a loan that is {status.replace('_', ' ')}")
        self.current_status = status
        self.action = action
        self.allowed_actions = allowed_actions
