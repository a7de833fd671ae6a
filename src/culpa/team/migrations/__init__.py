"""Alembic migrations of the team store; :func:`upgrade` brings a store to the newest schema."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine) -> None:
    """Create or upgrade the schema on ``engine`` (idempotent)."""
    from alembic import command

    cfg = config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
