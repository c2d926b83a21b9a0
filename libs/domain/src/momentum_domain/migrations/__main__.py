"""Database migrations: ``python -m momentum_domain.migrations ACTION`` (see ``--help``)."""

from __future__ import annotations

import argparse
import asyncio

from alembic import command

from momentum_domain.config import Settings, get_settings
from momentum_domain.kit.db_credentials import secrets_manager_credentials
from momentum_domain.migrations import alembic_config
from momentum_domain.migrations.roles import provision_app_role


def main() -> None:
    parser = argparse.ArgumentParser(description="Momentum database migrations")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("upgrade", help="migrate to a revision (default: head)").add_argument(
        "revision", nargs="?", default="head"
    )
    sub.add_parser("downgrade", help="migrate down to a revision").add_argument("revision")
    sub.add_parser("check", help="fail if the models and the migrations differ")
    sub.add_parser("current", help="show the database's revision")
    revision = sub.add_parser("revision", help="autogenerate a new migration from the models")
    revision.add_argument("-m", "--message", required=True)
    args = parser.parse_args()

    settings = get_settings()
    config = alembic_config(settings.database_url)
    if args.action == "upgrade":
        command.upgrade(config, args.revision)
        # Given the application role's password (the deployed migration task is), make sure
        # the role exists with it and may use every table this migration left.
        if settings.database_app_password:
            asyncio.run(_provision_app_role(settings))
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    elif args.action == "check":
        command.check(config)
    elif args.action == "current":
        command.current(config)
    else:
        command.revision(config, message=args.message, autogenerate=True)


async def _provision_app_role(settings: Settings) -> None:
    password, pending = settings.database_app_password, None
    if settings.database_secret_arn:
        # Given the secret itself, what it holds now (a rotation may have finished since this
        # task started) and what a rotation under way may have set on the database already.
        # Pending first: a rotation finishing between the two reads then shows as current.
        source = secrets_manager_credentials(settings)
        staged = await source.read("AWSPENDING")
        current = await source.read("AWSCURRENT")
        password = current.password if current is not None else password
        pending = staged.password if staged is not None else None
    await provision_app_role(
        settings.database_url, settings.database_app_user, password, pending_password=pending
    )


if __name__ == "__main__":
    main()
