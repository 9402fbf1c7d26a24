"""A small JSON Schema (draft 2020-12) checker for the keywords the manifest schema uses.

Why our own: the SDK depends on numpy, Pillow and onnxruntime only, yet must enforce the very
schema ``dp-export`` validates with ``jsonschema`` (export/manifest.schema.json) -- the same
file, so there is one definition of a valid manifest. Keywords: ``type``, ``enum``, ``const``,
``required``, ``properties``, ``additionalProperties``, ``items``, ``minItems``, ``maxItems``,
``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``minLength``, ``pattern``,
``$ref`` (local ``#/...``), ``allOf``, ``if``/``then``/``else``. Annotations (``format``,
``title``, ``description``) are ignored, as draft 2020-12 does by default. An unsupported
keyword is an error, so a schema change cannot silently stop being enforced.
"""

from __future__ import annotations

import re
from typing import Any

_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "format", "$comment", "default",
                          "examples"})
_HANDLED = frozenset({"type", "enum", "const", "required", "properties", "additionalProperties", "items",
                      "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                      "minLength", "pattern", "$ref", "allOf", "if", "then", "else"})


class SchemaViolation(ValueError):
    """``field`` is the failing location (``model.embedding_dim``, ``artefacts[0].file``)."""

    def __init__(self, field: str, problem: str):
        self.field = field or "(top level)"
        self.problem = problem
        super().__init__(f"{self.field}: {problem}")


def _type_ok(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise ValueError(f"unknown JSON Schema type {name!r}")


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, but ``true`` is not ``1`` (unlike Python's ``==``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check(instance: Any, schema: dict, root: dict | None = None, path: str = "") -> None:
    """Raise :class:`SchemaViolation` at the first place ``instance`` breaks ``schema``."""
    root = schema if root is None else root
    unknown = set(schema) - _HANDLED - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} not supported by this checker")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        check(instance, target, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(instance, t) for t in types):
            raise SchemaViolation(path, f"{_show(instance)} is not of type {' or '.join(types)}")
    if "const" in schema and not json_equal(instance, schema["const"]):
        raise SchemaViolation(path, f"{_show(instance)} is not {schema['const']!r}")
    if "enum" in schema and not any(json_equal(instance, e) for e in schema["enum"]):
        raise SchemaViolation(path, f"{_show(instance)} is not one of {schema['enum']!r}")
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        for key, fails in (("minimum", lambda v, b: v < b), ("maximum", lambda v, b: v > b),
                           ("exclusiveMinimum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v >= b)):
            if key in schema and fails(instance, schema[key]):
                raise SchemaViolation(path, f"{instance!r} breaks {key} {schema[key]!r}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            raise SchemaViolation(path, f"{_show(instance)} is shorter than {schema['minLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            raise SchemaViolation(path, f"{_show(instance)} does not match {schema['pattern']!r}")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            raise SchemaViolation(path, f"has {len(instance)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            raise SchemaViolation(path, f"has {len(instance)} items, more than {schema['maxItems']}")
        if "items" in schema:
            for i, item in enumerate(instance):
                check(item, schema["items"], root, _join(path, i))
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                raise SchemaViolation(_join(path, key), "required field is missing")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                check(value, props[key], root, _join(path, key))
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    raise SchemaViolation(_join(path, key), "unexpected field")
                if isinstance(extra, dict):
                    check(value, extra, root, _join(path, key))
    for sub in schema.get("allOf", []):
        check(instance, sub, root, path)
    if "if" in schema:
        try:
            check(instance, schema["if"], root, path)
            matched = True
        except SchemaViolation:
            matched = False
        branch = schema.get("then" if matched else "else")
        if branch is not None:
            check(instance, branch, root, path)
