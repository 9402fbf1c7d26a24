"""The exporter's errors: each one is a message a user can act on, never a bare traceback.

The CLI prints ``str(error)`` and exits non-zero; no half-written output folder is left behind
because every export writes into a temporary folder that is renamed only on success.
"""

from __future__ import annotations


class ExportError(RuntimeError):
    """Any failure of ``dp-export``; the message says what went wrong and what to do."""


class UsageError(ExportError):
    """A bad option: unknown format or quantisation, an image size the model cannot take."""


class CalibrationError(ExportError):
    """A calibration source with no readable images (or none that can be found)."""


class UnsupportedOpError(ExportError):
    """A converter could not handle an operator of the model; names the op and the format."""

    def __init__(self, fmt: str, op: str, detail: str = "") -> None:
        self.format = fmt
        self.op = op
        msg = f"the {fmt} converter cannot handle the operator {op!r}"
        if detail:
            msg += f" ({detail})"
        msg += ": replace it with supported operations or drop the format with --formats"
        super().__init__(msg)


class ParityError(ExportError):
    """An artefact failed a parity threshold; the message carries the measured figures."""


class ClientEnvError(ExportError):
    """A side virtualenv (tflite-support, MediaPipe) is missing; says which command creates it."""
