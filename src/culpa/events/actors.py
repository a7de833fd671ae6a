"""Actor names: one alias table that turns the many spellings of a group into one canonical name.

The built-in table (aliases.yaml beside this file) can be extended by a user YAML file of the
same shape: ``canonical: [alias, alias, ...]``. Coalitions ("Ahrar al-Sham, HTS, Southern Front"
in UCDP) resolve member by member; the coalition's name is its sorted canonical members, so the
same coalition written in another order is one actor.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from culpa import yamldoc
from culpa.errors import InputError
from culpa.inputs import read_text

UNATTRIBUTED_NAMES = frozenset(
    {"unknown", "unidentified", "unidentified armed group", "unknown perpetrator", "none", ""}
)
_APOSTROPHES = str.maketrans({c: "" for c in "'’‘`ʼʻ´"})
_NON_WORD = re.compile(r"[^0-9a-z()]+")
_TRAILING_ACRONYM = re.compile(r"^(.*\S)\s*\(([^()]+)\)$")


def alias_key(name: str) -> str:
    """Matching key: case, accents, apostrophes and punctuation do not matter."""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(c for c in s if not unicodedata.combining(c)).casefold().translate(_APOSTROPHES)
    return _NON_WORD.sub(" ", s).strip()


class AliasTable:
    """Maps any spelling to its canonical actor name; unknown names stay as written."""

    def __init__(self) -> None:
        self._canon: dict[str, str] = {}

    @classmethod
    def builtin(cls) -> AliasTable:
        table = cls()
        text = resources.files("culpa.events").joinpath("aliases.yaml").read_text("utf-8")
        table.update(yamldoc.load(text, "built-in aliases").data, origin="built-in aliases")
        return table

    @classmethod
    def load(cls, user_files: Iterable[Path] = ()) -> AliasTable:
        table = cls.builtin()
        for path in user_files:
            table.update_from_file(Path(path))
        return table

    def update_from_file(self, path: Path) -> None:
        doc = yamldoc.load(read_text(path, "alias file"), str(path))
        self.update(doc.data or {}, origin=str(path), doc=doc)

    def update(self, mapping: Mapping, origin: str = "aliases",
               doc: yamldoc.Document | None = None) -> None:
        doc = doc or yamldoc.Document(None, {}, origin)
        if not isinstance(mapping, Mapping):
            raise doc.fail("", "must map canonical names to lists of aliases")
        for canon, aliases in mapping.items():
            if aliases is None:
                aliases = []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise doc.fail(str(canon), "aliases must be a list of strings")
            if not str(canon).strip():
                raise doc.fail(str(canon), "a canonical name must not be empty")
            canon = str(canon)
            for name in [canon, *aliases]:
                self._canon[alias_key(name)] = canon

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._canon.items())

    def resolve(self, name: str | None) -> str | None:
        """Canonical name of one actor; None for an unknown/unidentified perpetrator."""
        if name is None:
            return None
        key = alias_key(name)
        if key in UNATTRIBUTED_NAMES or key.startswith("unidentified ") or key.startswith("unknown "):
            return None
        found = self._canon.get(key)
        if found is None:
            # "Islamic State of Iraq and the Levant (ISIL)": try the name, then the acronym.
            m = _TRAILING_ACRONYM.match(name.strip())
            if m:
                found = self._canon.get(alias_key(m.group(1))) or self._canon.get(
                    alias_key(m.group(2)))
        return found if found is not None else " ".join(name.split())

    def resolve_members(self, name: str | None, sep: str | None = ",") -> list[str]:
        """Canonical members of a possibly-coalition string, sorted and de-duplicated."""
        if name is None:
            return []
        whole = self._canon.get(alias_key(name))
        if whole is not None or sep is None or sep not in name:
            one = self.resolve(name)
            return [one] if one else []
        members = {self.resolve(part) for part in name.split(sep) if part.strip()}
        return sorted(m for m in members if m)

    def coalition_name(self, members: list[str]) -> str | None:
        return ", ".join(members) if members else None
