"""What the users domain announces after a commit (momentum_domain.kit.unit_of_work.publish)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UserChanged:
    """A user's role, sessions or existence changed: whatever a process remembers of them
    (an authenticated principal) is stale."""

    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A sign-in session ended (signed out, or its spent refresh token came back): its refresh
    tokens are revoked; the access tokens issued with it (``sid`` claim) must be refused."""

    session_id: uuid.UUID
