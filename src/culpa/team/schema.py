"""The team store's tables (SQLAlchemy Core). Alembic's migrations create exactly these."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users", metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

#: Login sessions and script tokens: only the SHA-256 of a token is stored.
tokens = sa.Table(
    "tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64),
              sa.ForeignKey("users.username", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "session" | "api"
    sa.Column("csrf", sa.String(64), nullable=True),  # sessions only
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),  # unix seconds; None: never (api tokens)
)

cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),  # the case document as JSON
    sa.Column("yaml", sa.Text, nullable=True),  # the YAML text it came as, when it did
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
)

judgements = sa.Table(
    "judgements", metadata,
    sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("items", sa.Text, nullable=False),  # JSON {item id: {likelihood|rating, grade}}
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: Append-only; one chain over every case: each entry's hash covers the previous entry's hash.
history = sa.Table(
    "history", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("case_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("before", sa.Text, nullable=True),  # JSON, None when created
    sa.Column("after", sa.Text, nullable=True),  # JSON, None when deleted
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

#: One row: the last entry of the chain. Every append locks and moves it, so appends serialise
#: and dropping the newest entries is caught too.
chain_head = sa.Table(
    "chain_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
