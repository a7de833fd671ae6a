"""Alembic environment: runs on the connection culpa hands it (or the configured URL)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from culpa.team.schema import metadata


def run() -> None:
    conn = context.config.attributes.get("connection")
    if conn is None:
        engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.begin() as conn:
            _migrate(conn)
        return
    _migrate(conn)


def _migrate(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
