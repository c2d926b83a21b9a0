"""Schema building blocks shared by every resource."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Request bodies reject fields they do not define."""


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def changes(patch: msgspec.Struct) -> dict[str, object]:
    """The fields a PATCH body actually sent."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }
