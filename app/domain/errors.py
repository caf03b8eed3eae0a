"""Errors of the pure domain: they describe what is wrong, never how to answer over HTTP."""


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DomainValidationError(DomainError):
    """Input that breaks a domain rule; `field` names the request field it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
