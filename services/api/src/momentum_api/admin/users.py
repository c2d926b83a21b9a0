"""User administration: list, search, change roles."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from momentum_api.admin.schemas import AdminUserOut, RoleIn, admin_user
from momentum_api.admin.writes import record_admin_action
from momentum_api.deps import DbSession
from momentum_api.identity.guards import admin
from momentum_api.identity.principal import Principal
from momentum_api.schemas import Offset, Page
from momentum_domain.errors import NotFound
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
        found, total = await users.search(db_session, q=q, role=role, limit=limit, offset=offset)
        return Page([admin_user(u) for u in found], total, limit, offset)

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
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleIn],
    ) -> AdminUserOut:
        """The last active administrator cannot be demoted (409), nor erased."""
        user = await users.get(db_session, user_id)
        if user is None or user.erased_at is not None:
            raise NotFound("No such user.")
        previous = user.role
        user = await users.change_role(db_session, user, data.role)
        await record_admin_action(
            request,
            db_session,
            action="user.role_change",
            resource_type="user",
            resource_id=user.id,
            details={"from": previous.value, "to": user.role.value},
        )
        await db_session.commit()
        await request.app.state.identity.forget(user.id)
        return admin_user(user)
