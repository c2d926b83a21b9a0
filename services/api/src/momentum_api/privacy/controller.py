"""A learner takes their data away (erasure is `DELETE /me`, on the account)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from momentum_api.deps import AppSettings, DbSession
from momentum_api.identity.guards import authenticated
from momentum_api.identity.principal import Principal
from momentum_api.origin import request_origin
from momentum_domain.privacy.service import privacy


class PrivacyController(Controller):
    path = "/me"
    tags = ["Account"]
    guards = [authenticated]
    security = [{"BearerToken": []}]

    @get("/export", operation_id="exportMyData", summary="Everything held about me, as JSON")
    async def export(
        self, request: Request[Principal, Any, Any], db_session: DbSession, settings: AppSettings
    ) -> dict[str, Any]:
        return await privacy.export(
            db_session, request.user.id, origin=request_origin(request, settings)
        )
