"""Case documents as the server receives and returns them: JSON or YAML, validated by the same
parser as ``culpa case`` (so a bad document gives the CLI's key path, as a 422).

Bodies come from the network, so reading one takes bounded time and memory: YAML goes through
the bounded loader (:mod:`culpa.yamldoc`: no anchors, so no "billion laughs"; no recursion),
and JSON data deeper or larger than that loader accepts is refused before anything walks it.

A document is kept as JSON-ready data (dates as ISO strings). A case that arrived as YAML also
keeps its text, so ``export.yaml`` gives back exactly what was sent.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import yaml

from culpa import yamldoc
from culpa.errors import InputError
from culpa.evidence.case import Case, parse_case

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def is_yaml(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in YAML_TYPES


def read_body(raw: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """The body as data, and the YAML text when it came as YAML."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not UTF-8 text") from None
    if is_yaml(content_type):
        return jsonable(yamldoc.load(text).data), text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise InputError(f"nested deeper than {yamldoc.MAX_DEPTH} levels") from None
    check_shape(data)
    return data, None


def check_shape(data: Any, where: str = "") -> None:
    """Refuse data nested deeper than ``yamldoc.MAX_DEPTH`` or holding more than
    ``yamldoc.MAX_NODES`` values (what the YAML loader refuses), walking it without recursion."""
    todo, nodes = [(data, 0)], 0
    while todo:
        value, depth = todo.pop()
        nodes += 1
        if nodes > yamldoc.MAX_NODES:
            raise InputError(f"more than {yamldoc.MAX_NODES:,} values",
                             path=where.rstrip(".") or None)
        if isinstance(value, (dict, list)):
            if depth >= yamldoc.MAX_DEPTH:
                raise InputError(f"nested deeper than {yamldoc.MAX_DEPTH} levels",
                                 path=where.rstrip(".") or None)
            children = value.values() if isinstance(value, dict) else value
            todo.extend((child, depth + 1) for child in children)


def validate(doc: Any, yaml_text: str | None = None, where: str = "") -> Case:
    """The parsed case, or InputError with the key path (prefixed by ``where``)."""
    if not isinstance(doc, dict):
        raise InputError("a case document must be a mapping (title, incident, hypotheses, "
                         "evidence)", path=where.rstrip(".") or None)
    if yaml_text is None:
        check_shape(doc, where)
    text = yaml_text if yaml_text is not None else to_yaml(doc)
    try:
        return parse_case(text, file=None)
    except InputError as exc:
        path = f"{where}{exc.path}" if exc.path else (where.rstrip(".") or None)
        raise InputError(exc.detail, path=path,
                         line=exc.line if yaml_text is not None else None) from None


def to_yaml(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def export_yaml(case_row: dict) -> str:
    """The YAML of a stored case: the text it came as, or its document written out."""
    return case_row["yaml"] if case_row.get("yaml") is not None else to_yaml(case_row["doc"])


def jsonable(value: Any) -> Any:
    """YAML's dates and datetimes as ISO strings, so the document is plain JSON data."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k: jsonable(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
