"""The one strict JSON codec of the SDK (docs/json.md, grammar version 1).

Why a module of its own: JSON from a file (index metadata, model manifests) is read by four
cores -- this SDK, the JavaScript, JVM and Swift demo cores -- and the same bytes must get the same
accept/refuse verdict everywhere. Python's ``json`` module alone is laxer than RFC 8259 in ways the
other cores are not: it turns ``1e400`` into ``inf``, accepts ``NaN``/``Infinity``, keeps the last
of duplicate keys, passes lone surrogates (``"\\ud800"``) through, guesses UTF-16/32 for bytes and
raises ``RecursionError`` on deep nesting. :func:`loads` closes each of those gaps; the shared
corpus ``tests/vectors/json/`` pins the verdicts that every core's tests check.

The grammar (docs/json.md):

* RFC 8259 text, UTF-8 (bytes are decoded strictly; invalid UTF-8 is refused), with only
  space, tab, LF and CR as whitespace, before and after the one top-level value (any value,
  scalars included). Anything else after it is refused.
* No byte-order mark: a leading U+FEFF is refused, not stripped.
* Numbers: RFC 8259 syntax (no ``01``, ``1.``, ``.5``, ``+1``, hex, ``NaN``, ``Infinity``), and
  the value must be a finite IEEE-754 double: ``1e400`` (or a 400-digit integer) is refused.
  A non-zero value too small for a double (``1e-400``) is accepted and reads as 0.
* Strings: no raw control characters (U+0000..U+001F), only the RFC's escapes, and no lone
  surrogates, escaped (``"\\ud800"``) or raw.
* Duplicate keys in one object are refused (keys compared after unescaping), so no core has to
  pick between "first wins" and "last wins".
* Arrays and objects nest at most :data:`MAX_JSON_DEPTH` (64) deep.

:func:`dumps` is ``json.dumps`` with ``allow_nan=False`` always: a NaN or infinity is a
:class:`JsonError`, never the invalid ``NaN``/``Infinity`` tokens.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["GRAMMAR_VERSION", "MAX_JSON_DEPTH", "JsonError", "dumps", "loads", "loads_strict_json"]

#: Version of the grammar in docs/json.md; bump it (and the corpus) together with any change.
GRAMMAR_VERSION = 1

#: Deepest array/object nesting accepted: ``[[1]]`` is depth 2, a scalar depth 0.
MAX_JSON_DEPTH = 64

_BOM = "\ufeff"
_SURROGATE = re.compile("[\ud800-\udfff]")
# An escaped surrogate in the raw text (or a false alarm like "\\\\ud800"): only then are the
# decoded strings walked, so ordinary documents pay one regex scan and nothing more.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(ValueError):
    """JSON outside the grammar of docs/json.md; the message is one line, ``source: problem``."""

    def __init__(self, problem: str, source: str | None = None):
        self.problem = problem
        self.source = source
        super().__init__(f"{source}: {problem}" if source else problem)


def _refuse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"number {_short(text)} is out of range (not a finite double)")
    return value


def _finite_int(text: str) -> int:
    # int() refuses more than sys.get_int_max_str_digits() digits (ValueError): such an integer
    # is far beyond a double anyway, so both paths are "out of range".
    try:
        value = int(text)
        float(value)
    except (OverflowError, ValueError):
        raise JsonError(f"number {_short(text)} is out of range (not a finite double)") from None
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"duplicate key {_short(repr(key))} in one object")
            seen.add(key)
    return doc


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_tree(doc: Any, strings: bool) -> None:
    """Depth (and, when ``strings``, lone surrogates in keys and values), iteratively."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:  # iterative: a deep document must not exhaust the Python stack here either
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JsonError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            if strings:
                for key in node:
                    _check_string(key)
            stack.extend((v, depth) for v in node.values())
        elif isinstance(node, list):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JsonError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((v, depth) for v in node)
        elif strings and isinstance(node, str):
            _check_string(node)


def _check_string(value: str) -> None:
    if _SURROGATE.search(value):
        raise JsonError("lone surrogate in a string (not Unicode text)")


def loads(data: str | bytes | bytearray | memoryview, *, source: str | None = None) -> Any:
    """Parse one JSON document under the grammar of docs/json.md.

    ``data``: text, or UTF-8 bytes (decoded strictly; never sniffed as UTF-16/32). ``source``
    names the file in the error message. Objects become ``dict``, arrays ``list``, integers
    ``int``, other numbers ``float``.

    Raises :class:`JsonError` (a ``ValueError``) for anything outside the grammar; never
    ``RecursionError``, ``UnicodeDecodeError`` or ``json.JSONDecodeError``.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError(f"not valid UTF-8 (byte {exc.start}: {exc.reason})", source) from None
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError(f"loads() takes str or bytes, not {type(data).__name__}")
    if text.startswith(_BOM):
        raise JsonError("starts with a byte-order mark (U+FEFF), which this grammar refuses", source)
    if _SURROGATE.search(text):
        raise JsonError("lone surrogate in the text (not Unicode text)", source)
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         parse_int=_finite_int, object_pairs_hook=_unique_keys)
    except JsonError as exc:
        raise JsonError(exc.problem, source) from None
    except RecursionError:
        raise JsonError(f"nested deeper than {MAX_JSON_DEPTH} levels", source) from None
    except json.JSONDecodeError as exc:
        msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg  # "Invalid control character at"
        raise JsonError(f"{msg} at line {exc.lineno} column {exc.colno}", source) from None
    try:
        _check_tree(doc, strings=_ESCAPED_SURROGATE.search(text) is not None)
    except JsonError as exc:
        raise JsonError(exc.problem, source) from None
    return doc


def loads_strict_json(text: str | bytes) -> Any:
    """The former ``index_format.loads_strict_json``: :func:`loads` without a source name."""
    return loads(text)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that can only write the grammar :func:`loads` reads.

    ``allow_nan`` is always False (a NaN or infinity is refused, never written as the invalid
    ``NaN``/``Infinity`` tokens); other keyword arguments pass through to ``json.dumps``.
    Raises :class:`JsonError` for a non-finite float or a value JSON cannot hold.
    """
    if kwargs.pop("allow_nan", False):
        raise ValueError("jsonio.dumps never writes NaN or Infinity (allow_nan=True is not supported)")
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError as exc:  # "Out of range float values are not JSON compliant"
        raise JsonError(f"cannot write as JSON: {exc}") from None
