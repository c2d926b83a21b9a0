from __future__ import annotations

from sqlalchemy.engine import make_url

from momentum_domain.config import Settings


def test_plain_postgres_urls_use_asyncpg() -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:5432/test")
    assert settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def test_database_url_from_ecs_pieces_escapes_the_password() -> None:
    settings = Settings(
        database_url="",
        database_host="db.internal",
        database_name="momentum",
        database_user="app",
        database_password="p@ss/w:rd#1",
    )
    url = make_url(settings.database_url)
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+asyncpg",
        "db.internal",
        5432,
        "momentum",
    )
    assert (url.username, url.password) == ("app", "p@ss/w:rd#1")


def test_an_explicit_url_wins() -> None:
    settings = Settings(database_url="postgresql://a@b/c", database_host="ignored")
    assert settings.database_url == "postgresql+asyncpg://a@b/c"
