"""A bounded YAML document loader for the small files people (and the network) hand to culpa.

Case files, watch-lists and alias tables are YAML, and the server takes them from the network,
so loading one must take bounded time and memory whatever the text. ``load`` therefore builds
the document itself from PyYAML's event stream (no recursion, so deep nesting cannot exhaust
the stack) and refuses, with the file, line and key path:

* anchors and aliases (``&a`` / ``*a``): the "billion laughs" bomb needs them, and no culpa file
  does; merge keys (``<<``) and tags other than the plain YAML ones (no Python objects);
* nesting deeper than ``max_depth``, more than ``max_nodes`` values, text over ``max_chars``;
* duplicate keys in a mapping (naming both lines), keys that are not plain scalars;
* integers beyond 64 bits (every later float conversion would overflow) and scalars YAML
  resolves to an impossible value (``2018-02-30`` read as a date);
* more than one document in the stream.

The result is a ``Document``: the plain Python data (dicts, lists, str, int, float, bool, None,
dates) plus the 1-based line of every key path (``evidence[2].reliability``), which validators
use through ``Document.fail`` so every message points into the file.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as ev
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from culpa.errors import InputError

MAX_CHARS = 2_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000
INT_LIMIT = 2**63  # |int| must be below this: an int64, and a float without overflow

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: faster

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}


@dataclass
class Document:
    """The loaded data, and where each key path starts in the file."""

    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    file: str | None = None

    def line(self, path: str) -> int | None:
        """The line of ``path``, or of the nearest enclosing key that has one."""
        probe = path
        while probe and probe not in self.lines:
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
        return self.lines.get(probe, 1 if not probe else None)  # the document: its first line

    def fail(self, path: str, message: str) -> InputError:
        """An InputError naming the file, the line of ``path`` and ``path`` itself."""
        return InputError(message, file=self.file, line=self.line(path), path=path or None)


def load(text: str, file: str | None = None, *, max_chars: int = MAX_CHARS,
         max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Document:
    """Parse one YAML document within the bounds above; ``file`` only labels messages."""
    if not isinstance(text, str):
        raise InputError(f"expected YAML text, not {type(text).__name__}", file=file)
    if len(text) > max_chars:
        raise InputError(f"the file is {len(text):,} characters long; at most {max_chars:,} "
                         f"are accepted", file=file)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError("contains a NUL character (not a YAML text file?)", file=file, line=line)
    builder = _Builder(file, max_depth, max_nodes)
    try:
        for event in yaml.parse(text, Loader=_Parser):
            builder.feed(event)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        line = None if mark is None else mark.line + 1
        position = getattr(exc, "position", None)  # a reader error: bad characters
        if line is None and isinstance(position, int):
            line = text.count("\n", 0, position) + 1
        if isinstance(exc, yaml.reader.ReaderError):
            problem = f"character {exc.character!r} is not allowed in YAML text"
        raise InputError(f"YAML syntax error: {problem}", file=file, line=line) from None
    except RecursionError:  # the event parser is iterative; this is a last line of defence
        raise InputError(f"nested deeper than {max_depth} levels", file=file) from None
    return Document(builder.result, builder.lines, file)


def key_path(path: str, key: Any) -> str:
    """``path.key`` (or just ``key`` at the top), the spelling every message uses."""
    return f"{path}.{key}" if path else str(key)


class _Builder:
    """Turns the event stream into data, one event at a time, with an explicit stack."""

    def __init__(self, file: str | None, max_depth: int, max_nodes: int):
        self.file, self.max_depth, self.max_nodes = file, max_depth, max_nodes
        self.lines: dict[str, int] = {}
        self.stack: list[_Open] = []
        self.result: Any = None
        self.documents = 0
        self.nodes = 0
        self.resolver = Resolver()
        self.constructor = SafeConstructor()

    def error(self, message: str, mark, path: str | None = None) -> InputError:
        return InputError(message, file=self.file, line=None if mark is None else mark.line + 1,
                          path=path or None)

    def feed(self, event: ev.Event) -> None:
        if isinstance(event, ev.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.error("more than one YAML document (a second '---')",
                                 event.start_mark)
        elif isinstance(event, ev.AliasEvent):
            raise self.error("YAML aliases (*name) are not accepted", event.start_mark,
                             self.child_path(event.start_mark))
        elif isinstance(event, (ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent)):
            self.node(event)
        elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
            done = self.stack.pop()
            self.attach(done.value, done.path, done.mark, is_key_ok=False)

    # -- one value -----------------------------------------------------------------------------

    def node(self, event) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise self.error(f"more than {self.max_nodes:,} values", event.start_mark)
        path = self.child_path(event.start_mark)
        if event.anchor is not None:
            raise self.error(f"YAML anchors (&{event.anchor}) are not accepted",
                             event.start_mark, path)
        if isinstance(event, ev.ScalarEvent):
            self.attach(self.scalar(event, path), path, event.start_mark, is_key_ok=True)
            return
        is_map = isinstance(event, ev.MappingStartEvent)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            raise self.error(f"YAML tag {event.tag} is not accepted", event.start_mark, path)
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, dict) and top.awaiting_key:
            raise self.error("a mapping key must be a plain value, not a "
                             f"{'mapping' if is_map else 'list'}", event.start_mark, path)
        if len(self.stack) >= self.max_depth:
            raise self.error(f"nested deeper than {self.max_depth} levels", event.start_mark,
                             path)
        self.stack.append(_Open({} if is_map else [], path, event.start_mark))

    def scalar(self, event: ev.ScalarEvent, path: str) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:merge":
            raise self.error("YAML merge keys (<<) are not accepted", event.start_mark, path)
        if tag not in _SCALAR_TAGS:
            raise self.error(f"YAML tag {tag} is not accepted", event.start_mark, path)
        if tag == "tag:yaml.org,2002:int":
            digits = sum(c.isdigit() for c in event.value)
            if digits > 40:
                raise self.error(f"integer with {digits} digits is too large", event.start_mark,
                                 path)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = self.constructor.construct_object(node)
        except (ValueError, OverflowError, TypeError, yaml.YAMLError):
            what = {"tag:yaml.org,2002:timestamp": "date or time"}.get(tag, tag.rsplit(":", 1)[-1])
            raise self.error(f"{event.value!r} is not a valid {what} (quote it if it is text)",
                             event.start_mark, path) from None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
            raise self.error(f"integer {event.value} is too large (at most 2^63 - 1)",
                             event.start_mark, path)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            try:
                value.astimezone(dt.timezone.utc)
            except (OverflowError, ValueError):
                raise self.error(f"{event.value!r} is out of range", event.start_mark,
                                 path) from None
        return value

    # -- where a value goes --------------------------------------------------------------------

    def child_path(self, mark) -> str:
        """The key path of the value that starts now."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if isinstance(top.value, list):
            return f"{top.path}[{len(top.value)}]"
        if top.awaiting_key:
            return top.path  # a key: its own path is only known once it is read
        return key_path(top.path, top.key_text)

    def attach(self, value: Any, path: str, mark, is_key_ok: bool) -> None:
        if not self.stack:
            self.result = value
            self.lines.setdefault(path, mark.line + 1)
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
            self.lines.setdefault(path, mark.line + 1)
            return
        if top.awaiting_key:  # this scalar is a key
            sub = key_path(top.path, value)
            if isinstance(value, float) and math.isnan(value):
                raise self.error("a mapping key cannot be .nan", mark, sub)
            try:
                first = top.key_lines.get(value)
            except TypeError:  # unhashable: cannot happen for scalars, kept for safety
                raise self.error("a mapping key must be a plain value", mark, sub) from None
            if first is not None:
                raise self.error(f"duplicate key {value!r} (first on line {first}, again on "
                                 f"line {mark.line + 1})", mark, sub)
            top.key_lines[value] = mark.line + 1
            top.key, top.key_text, top.awaiting_key = value, str(value), False
            self.lines[sub] = mark.line + 1
            return
        top.value[top.key] = value
        self.lines.setdefault(path, mark.line + 1)
        top.awaiting_key = True


@dataclass
class _Open:
    """A mapping or list being filled."""

    value: Any
    path: str
    mark: Any
    awaiting_key: bool = True
    key: Any = None
    key_text: str = ""
    key_lines: dict = field(default_factory=dict)
