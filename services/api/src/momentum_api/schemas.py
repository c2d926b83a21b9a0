"""Schema building blocks shared by every resource."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Request bodies reject fields they do not define."""


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def changes(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually sent."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }


# Bounded in the schema and by the validator: an unbounded offset reaches PostgreSQL as a
# BIGINT and fails there beyond 2^63. A million rows in, a filter serves better than paging.
MAX_OFFSET = 1_000_000
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="How many items to skip")]
