"""Case documents as the server receives and returns them: JSON or YAML, validated by the same
parser as ``culpa case`` (so a bad document gives the CLI's key path, as a 422).

A document is kept as JSON-ready data (dates as ISO strings). A case that arrived as YAML also
keeps its text, so ``export.yaml`` gives back exactly what was sent.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import yaml

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
        try:
            return jsonable(yaml.safe_load(text)), text
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"YAML syntax error: {getattr(exc, 'problem', None) or exc}",
                             line=None if mark is None else mark.line + 1) from None
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", line=exc.lineno) from None


def validate(doc: Any, yaml_text: str | None = None, where: str = "") -> Case:
    """The parsed case, or InputError with the key path (prefixed by ``where``)."""
    if not isinstance(doc, dict):
        raise InputError("a case document must be a mapping (title, incident, hypotheses, "
                         "evidence)", path=where.rstrip(".") or None)
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
