"""The CLI matrix (issue 19): every subcommand of the five command lines that writes, run with its
output pointed at something it must not destroy.

Derived from the click command trees, so a new subcommand is covered without writing a test:
its required parameters get made-up inputs (a file or folder of user data, by the parameter's
``click.Path`` settings), and its output option (or ``dp-train``'s ``out_dir=``/``name=``) gets each
hostile target in turn:

* ``input``        -- one of the command's own inputs;
* ``user_folder``  -- an existing folder holding a user's file (no DeepProduct marker);
* ``regular_file`` -- an existing regular file of the user's (for a folder output: ``--out`` is that
                      file; for a file output: the user's file itself);
* ``read_only``    -- a fresh path while every write raises ``EROFS`` (a stub: root ignores chmod);
* ``disk_full``    -- the same with ``ENOSPC`` at the first write;
* ``fifo``         -- a named pipe.

Each run must: exit non-zero, print exactly one line on stderr naming the tool, show no traceback,
finish (an alarm fails a hang), and leave every file that existed before it byte-identical.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deepproduct.benchmarks.cli import main as dp_bench
from deepproduct.export.cli import main as dp_export
from deepproduct.sdk.cli import main as dp_search
from deepproduct.training.data_cli import main as dp_data
from deepproduct.training.train_cli import main as dp_train

CLIS: dict[str, click.Command] = {"dp-data": dp_data, "dp-train": dp_train, "dp-export": dp_export,
                                  "dp-search": dp_search, "dp-bench": dp_bench}
#: Option names that are outputs, in the order a command's *main* output is picked.
OUTPUT_PARAMS = ("out", "out_dir", "contact_sheet", "report_path", "md_out", "json_out", "plot_path")
#: Subcommands that write nothing (they read and print): listed so a new writer cannot hide here.
READ_ONLY = {"dp-data stats", "dp-search info", "dp-search query", "dp-export verify"}
#: dp-search query writes only with --contact-sheet: the matrix passes it.
OPTIONAL_OUTPUT = {"dp-search query": "contact_sheet", "dp-search evaluate": "contact_sheet"}
SCENARIOS = ("input", "user_folder", "regular_file", "read_only", "disk_full", "fifo")


def _leaves(prefix: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _leaves(f"{prefix} {name}", sub)
    else:
        yield prefix, cmd


def _output_param(name: str, cmd: click.Command) -> click.Parameter | None:
    by_name = {p.name: p for p in cmd.params}
    if name in OPTIONAL_OUTPUT:
        return by_name[OPTIONAL_OUTPUT[name]]
    return next((by_name[n] for n in OUTPUT_PARAMS if n in by_name), None)


COMMANDS = [(name, cmd) for prog, root in CLIS.items() for name, cmd in _leaves(prog, root)]
WRITERS = [(n, c) for n, c in COMMANDS if n == "dp-train" or _output_param(n, c) is not None]


def test_every_subcommand_is_classified():
    """A subcommand either has an output the matrix drives, or is listed as read-only."""
    unclassified = {n for n, c in COMMANDS if n != "dp-train" and _output_param(n, c) is None} - READ_ONLY
    assert not unclassified, f"new subcommands without a known output option: {sorted(unclassified)}"
    assert len(WRITERS) >= 20  # every dp-data generator/adapter, dp-export, dp-search, dp-bench ...


def _is_folder_output(param: click.Parameter) -> bool:
    t = param.type
    return isinstance(t, click.Path) and not t.file_okay


def _make_input(root: Path, param: click.Parameter) -> Path:
    """User data standing in for a required input: a folder (with a file) or a file."""
    t = param.type
    path = root / "inputs" / param.name
    if isinstance(t, click.Path) and t.dir_okay and not t.file_okay:
        path.mkdir(parents=True)
        (path / "users-notes.txt").write_text("the user's own notes\n")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path = path.with_suffix(".csv")
        path.write_text("path,product_id,domain,split,tags\n")
    return path


def _required(name: str, cmd: click.Command) -> list[click.Parameter]:
    out_param = None if name == "dp-train" else _output_param(name, cmd)
    return [p for p in cmd.params if p.required and p is not out_param and p.name != "overrides"]


def _make_inputs(name: str, cmd: click.Command, root: Path) -> dict[str, Path]:
    """Made-up user data for every required path parameter (and dp-train's data manifest)."""
    made = {p.name: _make_input(root, p) for p in _required(name, cmd) if isinstance(p.type, click.Path)}
    if name == "dp-train":
        manifest = root / "inputs" / "manifest.csv"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("path,product_id,domain,split,tags\n")
        made["manifest"] = manifest
    return made


def _args(name: str, cmd: click.Command, inputs: dict[str, Path], out_value: Path) -> list[str]:
    """Arguments that satisfy click: required parameters filled in, the output aimed at ``out_value``."""
    args: list[str] = []
    for p in _required(name, cmd):
        if isinstance(p.type, click.Path):
            value = str(inputs[p.name])
        elif isinstance(p.type, click.Choice):
            value = str(p.type.choices[0])
        elif isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
            value = "1"
        else:
            value = "x"
        args += [value] if isinstance(p, click.Argument) else [p.opts[0], value]
    if name == "dp-train":
        return args + [f"out_dir={out_value.parent}", f"name={out_value.name}", f"data.manifest={inputs['manifest']}"]
    return args + [_output_param(name, cmd).opts[0], str(out_value)]


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_fifo():
                out[str(p)] = "fifo"
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class _WritesFail:
    """Every write-side call raises ``OSError(code)``; reading still works (the stubbed disk)."""

    def __init__(self, code: int) -> None:
        self.code = code

    def _raise(self, path: object) -> None:
        raise OSError(self.code, os.strerror(self.code), str(path))

    def install(self, mp: pytest.MonkeyPatch) -> None:
        real_open, real_os_open = builtins.open, os.open

        def fake_open(file, mode="r", *a, **k):
            if any(c in mode for c in "wax+"):
                self._raise(file)
            return real_open(file, mode, *a, **k)

        def fake_os_open(path, flags, *a, **k):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                self._raise(path)
            return real_os_open(path, flags, *a, **k)

        mp.setattr(builtins, "open", fake_open)
        mp.setattr(io, "open", fake_open)
        mp.setattr(os, "open", fake_os_open)
        for fn in ("mkdir", "rename", "replace", "mkfifo"):
            mp.setattr(os, fn, lambda *a, **k: self._raise(a[0] if a else "?"))


def _target(scenario: str, root: Path, inputs: list[Path], folder_output: bool) -> Path:
    if scenario == "input":  # an input of the output's own kind (a folder for a folder output), if any
        return next((p for p in inputs if p.is_dir() == folder_output), inputs[0])
    if scenario == "user_folder":
        folder = root / "users-folder"
        folder.mkdir()
        (folder / "thesis.txt").write_text("four years of work\n")
        return folder
    if scenario == "regular_file":
        f = root / "users-file.txt"
        f.write_text("the user's own file\n")
        return f
    if scenario == "fifo":
        f = root / "a-fifo"
        os.mkfifo(f)
        return f
    return root / "fresh" / ("out-folder" if folder_output else "out-file.out")


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("name", [n for n, _ in WRITERS])
def test_cli_matrix(name, scenario, tmp_path, monkeypatch):
    cmd = dict(WRITERS)[name]
    prog, *sub = name.split()
    root = tmp_path / "w"
    root.mkdir()
    folder_output = name == "dp-train" or _is_folder_output(_output_param(name, cmd))
    inputs = _make_inputs(name, cmd, root)
    if scenario == "input" and not inputs:
        pytest.skip(f"{name} has no required path input to aim its output at")  # nothing of the user's to clobber
    target = _target(scenario, root, list(inputs.values()), folder_output)
    args = _args(name, cmd, inputs, target)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    if scenario in ("read_only", "disk_full"):
        _WritesFail(errno.EROFS if scenario == "read_only" else errno.ENOSPC).install(monkeypatch)

    def hang(*_a):
        raise TimeoutError(f"{name} hung on the {scenario} target")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(120)
    try:
        result = CliRunner().invoke(CLIS[prog], [*sub, *args], catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        monkeypatch.undo()
    err_lines = [line for line in result.stderr.splitlines() if line.strip()]
    detail = f"{name} {scenario}: exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), detail + repr(result.exception)
    assert result.exit_code != 0, detail
    assert "Traceback" not in result.output, detail
    assert len(err_lines) == 1 and err_lines[0].startswith(f"{prog}") and "error:" in err_lines[0], detail
    after = _snapshot(tmp_path)
    changed = {p for p, h in before.items() if after.get(p) != h}
    assert not changed, f"{detail}\nchanged or removed: {sorted(changed)}"
