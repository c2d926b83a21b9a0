"""What a new password must be (NIST SP 800-63B, 5.1.1.2): long enough, not one that attackers
try first, and not the account's own email or name. No composition rules (they make passwords
harder to remember, not to guess) and no upper bound below 64 characters.

The list of common passwords is the 30,000 most frequent ones of the Xato corpus of leaked
passwords, as shipped by zxcvbn 4.5.0 (MIT licence, (c) 2016 Daniel Wolf), lower-cased; kept
gzipped beside this module and read once, on first use."""

from __future__ import annotations

import functools
import gzip
from importlib import resources

from momentum_domain.errors import Unprocessable

MIN_LENGTH = 10
MAX_LENGTH = 256
# Shorter names or email local parts are too common inside unrelated passwords to refuse them.
MIN_PERSONAL_PART = 4


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files(__package__).joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def password_problem(password: str, *, email: str, name: str) -> str | None:
    """Why ``password`` may not be used by the account with this email and name, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    folded = password.casefold()
    # Spaces and separators do not make a known password new ("pass word 12").
    squeezed = "".join(ch for ch in folded if ch.isalnum())
    known = common_passwords()
    if folded in known or squeezed in known or len(set(folded)) < 3:
        return "This password is too common; choose one that is harder to guess."
    email = email.strip().casefold()
    personal = [email, email.partition("@")[0], name.strip().casefold()]
    personal += [word for word in name.casefold().split() if len(word) >= MIN_PERSONAL_PART]
    if any(len(part) >= MIN_PERSONAL_PART and part in folded for part in personal):
        return "A password cannot contain the account's email address or name."
    return None


def check_new_password(password: str, *, email: str, name: str) -> None:
    """Raise a 422 naming the password field when ``password`` may not be used."""
    problem = password_problem(password, email=email, name=name)
    if problem is not None:
        raise Unprocessable(
            f"password: {problem}",
            extra={"errors": [{"field": "password", "source": "body", "message": problem}]},
        )
