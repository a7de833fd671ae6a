"""TeamStore: the one object over the team store (users, tokens, cases, judgements, history).

Every change to a case and its history entry are written in one transaction, and every such
transaction first locks the chain head, so appends to the chain are serial on SQLite (``BEGIN
IMMEDIATE``) and on PostgreSQL (``SELECT ... FOR UPDATE``) alike. Saves are optimistic: an
update names the version it started from and fails with :class:`VersionConflict` (carrying the
current version) when someone saved in between.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from culpa.errors import InputError
from culpa.team import ROLES, passwords
from culpa.team.history import GENESIS, Verdict, entry_hash, verify
from culpa.team.schema import cases, chain_head, history, judgements, tokens, users

#: Login sessions last this long unless the server is told otherwise.
SESSION_SECONDS = 8 * 3600
#: How long a token's owner is remembered in-process (``TeamStore.principal``). Logout and
#: removing a user through the same TeamStore forget it at once; a change made by another
#: process (``culpa user remove`` while the server runs) is seen within this many seconds.
PRINCIPAL_CACHE_SECONDS = 2.0


class NotFound(LookupError):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int):
        super().__init__(f"the case is at version {current}")
        self.current = current


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a session cookie (``csrf`` set) or a bearer token."""

    username: str
    role: str
    kind: str  # "session" | "api"
    csrf: str | None = None
    expires_at: float | None = None

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=False, separators=(",", ":"))


def engine_url(url: str) -> str:
    """``postgresql://`` means the psycopg 3 driver (the one installed with culpa)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


class TeamStore:
    """Open (creating or migrating) the team store at ``url``."""

    def __init__(self, url: str):
        self.url = engine_url(url)
        try:
            self.engine, self.writer = self._engines()
            from culpa.team.migrations import upgrade

            upgrade(self.writer)
            self._ensure_head()
        except sa.exc.SQLAlchemyError as exc:
            raise InputError(f"cannot open the cases store: {exc.__class__.__name__}: "
                             f"{str(exc.orig if hasattr(exc, 'orig') else exc).strip()}",
                             field="--cases") from None
        self.dialect = self.engine.dialect.name
        # token digest -> (Principal, monotonic time it was read): see PRINCIPAL_CACHE_SECONDS
        self._principals: dict[str, tuple[Principal, float]] = {}
        self._principals_lock = threading.Lock()

    def _forget_principals(self, digest: str | None = None, username: str | None = None) -> None:
        with self._principals_lock:
            if digest is not None:
                self._principals.pop(digest, None)
            if username is not None:
                for k in [k for k, (p, _) in self._principals.items() if p.username == username]:
                    del self._principals[k]

    def _engines(self) -> tuple[sa.Engine, sa.Engine]:
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() != "sqlite":
            engine = sa.create_engine(self.url, pool_size=8, max_overflow=8, pool_pre_ping=True)
            return engine, engine
        if url.database and url.database != ":memory:":
            from pathlib import Path

            if not Path(url.database).parent.exists():
                raise InputError("the folder for the cases store does not exist",
                                 file=url.database)
        reader = sa.create_engine(self.url, connect_args={"check_same_thread": False})
        writer = sa.create_engine(self.url, connect_args={"check_same_thread": False})
        for eng, begin in ((reader, "BEGIN"), (writer, "BEGIN IMMEDIATE")):
            _sqlite_setup(eng, begin)
        return reader, writer

    def close(self) -> None:
        self.engine.dispose()
        self.writer.dispose()

    def __enter__(self) -> TeamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_head(self) -> None:
        with self.writer.begin() as conn:
            if conn.execute(sa.select(chain_head.c.id)).first() is None:
                conn.execute(chain_head.insert().values(id=1, seq=0, hash=GENESIS))

    # -- users ----------------------------------------------------------------------------

    def add_user(self, username: str, role: str, password: str) -> dict:
        username = check_username(username)
        if role not in ROLES:
            raise InputError(f"{role!r} is not one of {', '.join(ROLES)}", field="--role")
        if len(password) < passwords.MIN_LENGTH:
            raise InputError(f"the password must have at least {passwords.MIN_LENGTH} "
                             "characters", field="password")
        row = {"username": username, "role": role, "created_at": now_iso(),
               "password_hash": passwords.hash_password(password)}
        with self.writer.begin() as conn:
            if conn.execute(sa.select(users.c.username).where(
                    users.c.username == username)).first() is not None:
                raise InputError(f"user {username!r} exists already", field="NAME")
            conn.execute(users.insert().values(**row))
        return {"username": username, "role": role, "created_at": row["created_at"]}

    def list_users(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users.c.username, users.c.role, users.c.created_at)
                                .order_by(users.c.username)).all()
        return [dict(r._mapping) for r in rows]

    def user(self, username: str) -> dict | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(users).where(users.c.username == username)).first()
        return None if r is None else dict(r._mapping)

    def remove_user(self, username: str) -> None:
        self._forget_principals(username=username)
        with self.writer.begin() as conn:
            conn.execute(tokens.delete().where(tokens.c.username == username))
            if conn.execute(users.delete().where(users.c.username == username)).rowcount == 0:
                raise InputError(f"no user {username!r}", field="NAME")
        self._forget_principals(username=username)  # a lookup may have raced the delete

    def check_login(self, username: str, password: str) -> dict | None:
        """The user if the password is theirs; as slow for an unknown name as for a known one."""
        u = self.user(username) if isinstance(username, str) and len(username) <= 64 else None
        ok = passwords.check_password(u["password_hash"] if u else passwords.dummy_hash(),
                                      password)
        return u if (u is not None and ok) else None

    # -- tokens ---------------------------------------------------------------------------

    def new_session(self, username: str, seconds: float = SESSION_SECONDS) -> tuple[str, str]:
        """A login session: (token, csrf token); only the token's hash is stored."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.writer.begin() as conn:
            now = time.time()
            conn.execute(tokens.delete().where(tokens.c.expires_at < now))  # tidy expired ones
            conn.execute(tokens.insert().values(token_hash=_digest(token), username=username,
                                                kind="session", csrf=csrf, created_at=now_iso(),
                                                expires_at=now + seconds))
        return token, csrf

    def new_api_token(self, username: str) -> str:
        if self.user(username) is None:
            raise InputError(f"no user {username!r}", field="NAME")
        token = "culpa_" + secrets.token_urlsafe(32)
        with self.writer.begin() as conn:
            conn.execute(tokens.insert().values(token_hash=_digest(token), username=username,
                                                kind="api", created_at=now_iso()))
        return token

    def remembered_principal(self, token: str) -> Principal | None:
        """The owner of ``token`` when it was looked up in the last
        :data:`PRINCIPAL_CACHE_SECONDS` and has not expired, else None (ask :meth:`principal`).
        Never touches the database: an async caller may use it on its event loop."""
        with self._principals_lock:
            hit = self._principals.get(_digest(token))
        if hit is None or time.monotonic() - hit[1] >= PRINCIPAL_CACHE_SECONDS:
            return None
        who = hit[0]
        if who.expires_at is not None and who.expires_at < time.time():
            return None
        return who

    def principal(self, token: str) -> Principal | None:
        """Who holds ``token``, or None (unknown, expired, or the user was removed).

        A found owner is remembered for :data:`PRINCIPAL_CACHE_SECONDS` (a request then needs
        no query); its expiry is checked on every call."""
        digest = _digest(token)
        now = time.monotonic()
        with self._principals_lock:
            hit = self._principals.get(digest)
        if hit is not None and now - hit[1] < PRINCIPAL_CACHE_SECONDS:
            who = hit[0]
            if who.expires_at is not None and who.expires_at < time.time():
                self._forget_principals(digest)
                return None
            return who
        q = (sa.select(tokens.c.kind, tokens.c.csrf, tokens.c.expires_at, users.c.username,
                       users.c.role)
             .join(users, users.c.username == tokens.c.username)
             .where(tokens.c.token_hash == digest))
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        if r is None or (r.expires_at is not None and r.expires_at < time.time()):
            self._forget_principals(digest)
            return None
        who = Principal(r.username, r.role, r.kind, r.csrf, r.expires_at)
        with self._principals_lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[digest] = (who, now)
        return who

    def end_session(self, token: str) -> None:
        digest = _digest(token)
        self._forget_principals(digest)
        with self.writer.begin() as conn:
            conn.execute(tokens.delete().where(tokens.c.token_hash == digest)
                         .where(tokens.c.kind == "session"))
        self._forget_principals(digest)

    # -- cases ----------------------------------------------------------------------------

    def create_case(self, doc: dict, yaml_text: str | None, username: str) -> dict:
        case_id = secrets.token_hex(6)
        at = now_iso()
        row = {"id": case_id, "title": _title(doc), "owner": username, "version": 1,
               "doc": _dumps(doc), "yaml": yaml_text, "created_at": at, "updated_at": at,
               "updated_by": username, "deleted": False}
        with self.writer.begin() as conn:
            self._lock_head(conn)
            conn.execute(cases.insert().values(**row))
            self._append(conn, case_id, 1, username, at, "created", None, _snapshot(row))
        return {"id": case_id, "version": 1}

    def list_cases(self, limit: int, offset: int) -> tuple[list[dict], int]:
        live = cases.c.deleted.is_(False)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(cases).where(live)).scalar()
            rows = conn.execute(sa.select(cases).where(live)
                                .order_by(cases.c.updated_at.desc(), cases.c.id)
                                .limit(limit).offset(offset)).all()
        return [_case_row(r) for r in rows], int(total)

    def get_case(self, case_id: str) -> dict:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(cases).where(cases.c.id == case_id)
                             .where(cases.c.deleted.is_(False))).first()
        if r is None:
            raise NotFound(f"no case {case_id!r}")
        return _case_row(r)

    def update_case(self, case_id: str, version: int, doc: dict, yaml_text: str | None,
                    username: str) -> dict:
        at = now_iso()
        with self.writer.begin() as conn:
            self._lock_head(conn)
            before = conn.execute(sa.select(cases).where(cases.c.id == case_id)
                                  .where(cases.c.deleted.is_(False))).first()
            if before is None:
                raise NotFound(f"no case {case_id!r}")
            if before.version != version:
                raise VersionConflict(before.version)
            values = {"title": _title(doc), "version": version + 1, "doc": _dumps(doc),
                      "yaml": yaml_text, "updated_at": at, "updated_by": username}
            done = conn.execute(cases.update().where(cases.c.id == case_id)
                                .where(cases.c.version == version).values(**values))
            if done.rowcount != 1:  # someone saved between our read and our write
                raise VersionConflict(self._version(conn, case_id))
            after = {**dict(before._mapping), **values}
            self._append(conn, case_id, version + 1, username, at,
                         _change(json.loads(before.doc), doc),
                         _snapshot(before._mapping), _snapshot(after))
        return {"id": case_id, "version": version + 1}

    def delete_case(self, case_id: str, username: str) -> None:
        at = now_iso()
        with self.writer.begin() as conn:
            self._lock_head(conn)
            before = conn.execute(sa.select(cases).where(cases.c.id == case_id)
                                  .where(cases.c.deleted.is_(False))).first()
            if before is None:
                raise NotFound(f"no case {case_id!r}")
            conn.execute(cases.update().where(cases.c.id == case_id)
                         .values(deleted=True, updated_at=at, updated_by=username))
            self._append(conn, case_id, before.version, username, at, "deleted",
                         _snapshot(before._mapping), None)

    @staticmethod
    def _version(conn, case_id: str) -> int:
        return int(conn.execute(sa.select(cases.c.version).where(cases.c.id == case_id))
                   .scalar_one())

    # -- judgements -----------------------------------------------------------------------

    def set_judgement(self, case_id: str, username: str, items: dict) -> None:
        at = now_iso()
        with self.writer.begin() as conn:
            self._lock_head(conn)
            case = conn.execute(sa.select(cases.c.version).where(cases.c.id == case_id)
                                .where(cases.c.deleted.is_(False))).first()
            if case is None:
                raise NotFound(f"no case {case_id!r}")
            key = (judgements.c.case_id == case_id) & (judgements.c.username == username)
            old = conn.execute(sa.select(judgements.c["items"]).where(key)).scalar()
            conn.execute(judgements.delete().where(key))
            conn.execute(judgements.insert().values(case_id=case_id, username=username,
                                                    items=_dumps(items), updated_at=at))
            self._append(conn, case_id, case.version, username, at,
                         f"judgement of {username} on {len(items)} item(s)", old, _dumps(items))

    def judgements(self, case_id: str) -> dict[str, dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(judgements.c.username, judgements.c["items"])
                                .where(judgements.c.case_id == case_id)
                                .order_by(judgements.c.username)).all()
        return {r.username: json.loads(r.items) for r in rows}

    # -- history --------------------------------------------------------------------------

    def _lock_head(self, conn) -> tuple[int, str]:
        q = sa.select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == 1)
        if self.writer.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already locks
            q = q.with_for_update()
        r = conn.execute(q).one()
        return int(r.seq), r.hash

    def _append(self, conn, case_id: str, version: int, username: str, at: str, change: str,
                before: str | None, after: str | None) -> None:
        seq, prev = self._lock_head(conn)
        seq += 1
        h = entry_hash(seq, case_id, version, username, at, change, before, after, prev)
        conn.execute(history.insert().values(seq=seq, case_id=case_id, version=version,
                                             username=username, at=at, change=change,
                                             before=before, after=after, prev_hash=prev, hash=h))
        conn.execute(chain_head.update().where(chain_head.c.id == 1).values(seq=seq, hash=h))

    def history(self, case_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(history.c.seq, history.c.version, history.c.username,
                                          history.c.at, history.c.change, history.c.hash)
                                .where(history.c.case_id == case_id)
                                .order_by(history.c.seq)).all()
        return [{"seq": r.seq, "version": r.version, "user": r.username, "at": r.at,
                 "change": r.change, "hash": r.hash} for r in rows]

    def history_entry(self, seq: int) -> dict:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(history).where(history.c.seq == seq)).first()
        if r is None:
            raise NotFound(f"no history entry {seq}")
        return dict(r._mapping)

    def verify(self) -> Verdict:
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(chain_head.c.seq, chain_head.c.hash)).first()
            rows = conn.execution_options(yield_per=1000).execute(
                sa.select(history).order_by(history.c.seq))
            return verify(rows, None if head is None else (head.seq, head.hash))


def _sqlite_setup(engine: sa.Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we say when transactions begin, and how
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def do_begin(conn):
        conn.exec_driver_sql(begin)


def check_username(name: Any) -> str:
    if not isinstance(name, str) or not (1 <= len(name) <= 64) or not all(
            c.isalnum() or c in "._-@" for c in name):
        raise InputError(f"{name!r} is not a user name (1-64 letters, digits, . _ - @)",
                         field="NAME")
    return name


def _title(doc: dict) -> str:
    t = doc.get("title") if isinstance(doc, dict) else None
    return t.strip() if isinstance(t, str) and t.strip() else "Untitled case"


def _snapshot(row) -> str:
    """The case as the history keeps it: its document and version (JSON)."""
    return _dumps({"version": row["version"], "title": row["title"],
                   "doc": json.loads(row["doc"]), "yaml": row["yaml"]})


def _case_row(r) -> dict:
    return {"id": r.id, "title": r.title, "owner": r.owner, "version": r.version,
            "doc": json.loads(r.doc), "yaml": r.yaml, "created_at": r.created_at,
            "updated_at": r.updated_at, "updated_by": r.updated_by}


def _change(before: dict, after: dict) -> str:
    """A short description of what a save changed: the top-level keys and evidence items."""
    parts = [k for k in sorted(set(before) | set(after))
             if k != "evidence" and before.get(k) != after.get(k)]
    old = {str(e.get("id")): e for e in before.get("evidence") or [] if isinstance(e, dict)}
    new = {str(e.get("id")): e for e in after.get("evidence") or [] if isinstance(e, dict)}
    parts += [f"+evidence {i}" for i in new if i not in old]
    parts += [f"-evidence {i}" for i in old if i not in new]
    parts += [f"evidence {i}" for i in new if i in old and new[i] != old[i]]
    return "edited: " + (", ".join(parts) if parts else "no change")
