"""The one error boundary of the five command lines (``dp-data``, ``dp-train``, ``dp-export``,
``dp-search``, ``dp-bench``): every failure is one line on stderr and a documented exit status.

Why one boundary: a probe found 15 ways to make a command die with a Python traceback (full disk,
read-only folders, malformed YAML, a 128 KB CSV field, deep JSON, another architecture's checkpoint,
...), because each CLI caught its own short list of exceptions and two caught none. A user
cannot act on a traceback; they can act on ``dp-search: error: /data/x.csv: No space left on device``.

Every command is a :class:`BoundaryGroup` or :class:`BoundaryCommand`; their ``invoke`` turns an
exception into a :class:`CliError` (a ``click.ClickException``, so click prints it and exits):

=====  ==========================================================================================
exit   meaning (docs/threat-model.md, "Exit status")
=====  ==========================================================================================
0      success
1      bad input or a failed check: the project's own errors, ``ValueError``, CSV/YAML/JSON errors,
       ``RecursionError`` (``dp-train``: 2, its documented status since its first release)
2      usage: an unknown option, a bad option value (click's own checks, printed on one line too)
3      refused by the output policy (:mod:`deepproduct.sdk.output_policy`): nothing was written
4      the operating system refused: disk full, read-only, permission denied, not a folder, ...
70     an unexpected error (a bug): one line, plus the file holding the full traceback
1      also Ctrl-C (click prints ``Aborted!``)
=====  ==========================================================================================

``--debug`` (on every command) or ``DP_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .output_policy import OutputRefused

EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_OS = 4
EXIT_INTERNAL = 70

_OS_WORDS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}

#: C0/C1 control characters (ESC, OSC's BEL, ...) that a terminal would interpret, and the Unicode
#: bidirectional controls that reorder what is shown (an id could display as another).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: Any) -> str:
    """``text`` with every control character shown as a ``\\xNN`` escape, so an id or title carrying
    ESC/OSC sequences cannot move the cursor, retitle the window or forge a hyperlink."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def one_line(text: str) -> str:
    """A message folded onto one line (terminal-safe)."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    return terminal_safe("; ".join(parts) if parts else str(text))


class CliError(click.ClickException):
    """An error the boundary has already turned into ``PROG: error: MESSAGE`` and an exit status."""

    def __init__(self, prog: str, message: str, exit_code: int) -> None:
        super().__init__(one_line(message))
        self.prog = prog
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:  # click's default prints "Error: ..."; name the tool instead
        click.echo(f"{self.prog}: error: {self.message}", err=True)


def _debug_enabled(ctx: click.Context | None) -> bool:
    if os.environ.get("DP_DEBUG", "").strip() not in ("", "0"):
        return True
    while ctx is not None:
        if ctx.meta.get("deepproduct.debug"):
            return True
        ctx = ctx.parent
    return False


def _os_message(exc: OSError) -> str:
    words = _OS_WORDS.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {words}" if names else f"{words} ({exc})"


def _yaml_error_types() -> tuple[type[BaseException], ...]:
    try:
        import yaml
    except ImportError:  # the SDK alone has no PyYAML; nothing of it can then be raised
        return ()
    return (yaml.YAMLError,)


def _write_traceback(prog: str, exc: BaseException) -> Path | None:
    """The full traceback in a file of its own (owner-only), for a bug report; None if unwritable."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        fd, name = tempfile.mkstemp(prefix=f"{prog}-traceback-{stamp}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{prog} {' '.join(sys.argv[1:])}\n\n")
            f.write("".join(traceback.format_exception(exc)))
        return Path(name)
    except OSError:
        return None


def to_cli_error(prog: str, exc: BaseException, *, known: Sequence[type[BaseException]] = (),
                 known_exit_code: int = EXIT_INPUT, debug: bool = False) -> click.ClickException:
    """Map any exception onto a one-line :class:`CliError` (see the module docstring's table)."""
    if isinstance(exc, OutputRefused):
        return CliError(prog, str(exc), EXIT_REFUSED)
    if isinstance(exc, RecursionError):
        return CliError(prog, "input nested too deeply to read (refused)", known_exit_code)
    if isinstance(exc, MemoryError):
        return CliError(prog, "out of memory (an input is too large for this machine)", known_exit_code)
    if isinstance(exc, OSError):
        return CliError(prog, _os_message(exc), EXIT_OS)
    if isinstance(exc, (ValueError, csv.Error, *_yaml_error_types(), *known)):
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return CliError(prog, str(message) or type(exc).__name__, known_exit_code)
    if debug:
        traceback.print_exception(exc)
        return CliError(prog, f"unexpected {type(exc).__name__}: {exc}", EXIT_INTERNAL)
    where = _write_traceback(prog, exc)
    tail = f"; full traceback in {where}" if where else ""
    return CliError(prog, f"unexpected {type(exc).__name__}: {exc} (a bug: please report it{tail}; "
                          "rerun with --debug or DP_DEBUG=1 to see it here)", EXIT_INTERNAL)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["deepproduct.debug"] = True


def _debug_option() -> click.Option:
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help="Show the full traceback of an unexpected error (also DP_DEBUG=1).")


class _Boundary:
    """The ``invoke`` wrapper shared by :class:`BoundaryGroup` and :class:`BoundaryCommand`."""

    #: Set by :func:`boundary`: the tool's name, extra known error types, the status for known errors.
    prog: str = "deepproduct"
    known: tuple[type[BaseException], ...] = ()
    known_exit_code: int = EXIT_INPUT

    def _add_debug(self) -> None:
        params = self.params
        if not any("--debug" in p.opts for p in params if isinstance(p, click.Option)):
            params.append(_debug_option())

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """click's standalone ``main``, with every error -- usage errors included -- on one line."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)  # type: ignore[misc]
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)  # type: ignore[misc]
        except CliError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else self.prog
            click.echo(f"{self.prog}: error: {one_line(exc.format_message())} (usage: {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"{self.prog}: error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (SystemExit, KeyboardInterrupt):  # Ctrl-C: click's own "Aborted!", exit status 1
            raise
        except BrokenPipeError:  # `dp-data stats X | head -1`: the reader left; not an error to report
            _silence_stdout()
            raise click.exceptions.Exit(141) from None
        except BaseException as exc:  # noqa: BLE001 - this is the boundary: everything becomes one line
            root = ctx.find_root().command
            prog = getattr(root, "prog", self.prog)
            known = getattr(root, "known", self.known)
            code = getattr(root, "known_exit_code", self.known_exit_code)
            raise to_cli_error(prog, exc, known=known, known_exit_code=code,
                               debug=_debug_enabled(ctx)) from exc


class BoundaryGroup(_Boundary, click.Group):
    """A click group whose commands (and sub-groups) fail with one line, never a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_debug()

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", BoundaryCommand)
        return super().command(*args, **kwargs)

    def group(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", BoundaryGroup)
        return super().group(*args, **kwargs)


class BoundaryCommand(_Boundary, click.Command):
    """A single click command behind the same boundary."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_debug()


def boundary(prog: str, *, known: Sequence[type[BaseException]] = (), known_exit_code: int = EXIT_INPUT,
             cls: type[_Boundary] = BoundaryGroup) -> type:
    """A subclass of ``cls`` bound to one tool: ``@click.group(cls=boundary("dp-search"))``."""
    return type(f"{cls.__name__}_{prog.replace('-', '_')}", (cls,),
                {"prog": prog, "known": tuple(known), "known_exit_code": known_exit_code})
