"""Password policy (CONTRACT Hardening): at least 12 characters, not the username, not a common password. The
common-password list is zxcvbn's 30,000 most frequent leaked passwords, shipped with the package (no online
breach API is ever called)."""

from functools import lru_cache

from app.core.errors import ValidationFailed

MIN_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 5


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, username: str) -> None:
    """422 naming `password` when the password is weak for this username."""
    problem = weakness(password, username)
    if problem is not None:
        raise ValidationFailed.single("password", problem)


def weakness(password: str, username: str) -> str | None:
    stripped = password.strip()
    if len(stripped) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters, not counting leading or trailing spaces"
    if len(set(stripped)) < MIN_DISTINCT_CHARACTERS:
        return f"must use at least {MIN_DISTINCT_CHARACTERS} different characters"
    name = username.strip().lower()
    lowered = stripped.lower()
    # The username adds nothing an attacker does not know: what is left without it must still be long enough.
    # (CONTRACT Hardening says "not the username"; refusing every password that merely contains it would
    # refuse an operator's ADMIN_PASSWORD such as "Check-admin-…" for the user `admin`.)
    if name and (lowered == name or (len(name) >= 4 and len(lowered.replace(name, "").strip()) < MIN_LENGTH)):
        return f"must not be the username, nor the username with fewer than {MIN_LENGTH} other characters"
    # A common password with digits or symbols appended ("baseball1234") is guessed as early as the word itself.
    base = lowered.rstrip("0123456789!@#$%^&*.?_-+= ")
    if lowered in _common() or (len(base) >= 4 and base in _common()):
        return "is one of the most common passwords; choose another"
    return None
