"""The hash chain over every case's history, and its check (``culpa audit verify``).

Entry n's hash is SHA-256 over its own fields and entry n-1's hash (the first entry chains to
``GENESIS``); the chain head row holds the last hash. Changing, removing or reordering any
entry, or dropping the newest ones, breaks the chain at the first entry touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

GENESIS = "0" * 64


def entry_hash(seq: int, case_id: str, version: int, username: str, at: str, change: str,
               before: str | None, after: str | None, prev_hash: str) -> str:
    payload = json.dumps([seq, case_id, version, username, at, change, before, after, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    bad_seq: int | None = None  # the first entry that does not hold
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "bad_entry": self.bad_seq,
                "reason": self.reason}


def verify(rows, head: tuple[int, str] | None) -> Verdict:
    """Walk ``rows`` (history rows in seq order) and the chain head; the first break wins."""
    prev, expected_seq, n = GENESIS, 1, 0
    for r in rows:
        n += 1
        where = f"entry {r.seq} (case {r.case_id}, version {r.version})"
        if r.seq != expected_seq:
            return Verdict(False, n, expected_seq,
                           f"entry {expected_seq}: missing (found {where} in its place); "
                           "entries were removed or reordered")
        if r.prev_hash != prev:
            return Verdict(False, n, r.seq, f"{where}: does not chain to the entry before it")
        h = entry_hash(r.seq, r.case_id, r.version, r.username, r.at, r.change, r.before,
                       r.after, r.prev_hash)
        if h != r.hash:
            return Verdict(False, n, r.seq, f"{where}: its content does not match its hash "
                                            "(the entry was changed)")
        prev, expected_seq = r.hash, expected_seq + 1
    if head is not None and (head[0], head[1]) != (expected_seq - 1, prev):
        return Verdict(False, n, expected_seq, f"entry {expected_seq}: the chain head records "
                                               f"entry {head[0]}; entries after "
                                               f"{expected_seq - 1} were removed")
    return Verdict(True, n)
