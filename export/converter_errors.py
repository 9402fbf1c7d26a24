"""Turn a converter's exception into :class:`UnsupportedOpError` naming the operator.

Each converter words "I cannot convert this op" differently (measured with aten.erfinv, which
none of the three supports):
- torch.onnx (dynamo): ``No ONNX function found for <OpOverload(op='aten.erfinv', ...``
- litert-torch: ``Lowering not found: aten.erfinv.default``
- coremltools: ``Unsupported fx node erfinv, kind erfinv`` or
  ``PyTorch convert function for op 'erfinv' not implemented``
Anything else stays a generic :class:`ExportError` carrying the converter's last message line.
"""

from __future__ import annotations

import re

from .errors import ExportError, UnsupportedOpError

_PATTERNS = [
    re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'"),
    re.compile(r"Lowering not found: ([\w.]+)"),
    re.compile(r"Unsupported fx node (\w+)"),
    re.compile(r"convert function for op '(\w+)' not implemented"),
    re.compile(r"[Uu]nsupported (?:op|operator)[^'\"]*['\"]([\w.:]+)['\"]"),
]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def op_from_message(text: str) -> str | None:
    for pattern in _PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1).removesuffix(".default")
    return None


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(str(cur))
        cur = cur.__cause__ or cur.__context__
    return _ANSI.sub("", "\n".join(parts))


def translate(exc: BaseException, fmt: str, stage: str) -> ExportError:
    """The error to raise for ``exc`` raised by the ``fmt`` converter during ``stage``."""
    if isinstance(exc, ExportError):
        return exc
    text = _chain_text(exc)
    op = op_from_message(text)
    if op:
        return UnsupportedOpError(fmt, op)
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), repr(exc))
    return ExportError(f"{fmt} {stage} failed: {type(exc).__name__}: {last[:400]}")
