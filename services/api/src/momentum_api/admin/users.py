"""User administration: list, search, change roles."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from momentum_api.admin.schemas import AdminUserOut, RoleIn, admin_user
from momentum_api.deps import AppSettings, DbSession
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_api.schemas import Offset, Page
from momentum_domain.kit.pagination import PageRequest
from momentum_domain.users.models import Role
from momentum_domain.users.service import users


class UserAdminController(Controller):
    path = "/admin/users"
    tags = ["Admin: users"]
    guards = [admin]
    security = [{"BearerToken": []}]

    @get("/", operation_id="adminListUsers", summary="List and search users")
    async def list_users(
        self,
        db_session: DbSession,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        role: FromQuery[Role | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        offset: Offset = 0,
    ) -> Page[AdminUserOut]:
        """`q` matches part of the email or the name."""
        found = await users.search(db_session, q=q, role=role, page=PageRequest(limit, offset))
        return Page([admin_user(u) for u in found.items], found.total, limit, offset)

    @put(
        "/{user_id:uuid}/role",
        operation_id="adminSetUserRole",
        summary="Change a user's role",
        responses={409: ResponseSpec(None, description="The last administrator")},
    )
    async def set_role(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleIn],
    ) -> AdminUserOut:
        """The last active administrator cannot be demoted (409), nor erased."""
        user = await users.change_role(
            db_session, user_id, data.role,
            actor_id=request.user.id, origin=request_origin(request, settings),
        )  # fmt: skip
        return admin_user(user)
