"""Progress output: a tqdm bar on a terminal, a handful of plain lines in a log."""

from __future__ import annotations

import io

from deepproduct.training import progress


def test_log_progress_prints_a_few_lines_per_stage():
    out = io.StringIO()
    bar = progress.LogProgress(total=1000, desc="epoch 1/4", stream=out)
    for i in range(1000):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (i + 1):.4f}")
    bar.close()
    bar.close()  # idempotent
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch 1/4: start (1000)"
    assert [line.split(" in ")[0] for line in lines[1:]] == [
        "epoch 1/4: 250/1000", "epoch 1/4: 500/1000", "epoch 1/4: 750/1000", "epoch 1/4: 1000/1000"]
    assert lines[-1].endswith("loss=0.0010") and "\r" not in out.getvalue()


def test_iterable_without_leave_prints_only_the_end_line():
    out = io.StringIO()
    items = list(progress.LogProgress(range(7), desc="eval test", stream=out, every_percent=1000,
                                      quiet_start=True))
    assert items == list(range(7))
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("eval test: 7/7 in ")


def test_progress_bar_is_plain_lines_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda stream=None: False)
    assert isinstance(progress.progress_bar(total=3, desc="x", disable=True), progress.LogProgress)
    monkeypatch.setattr(progress, "on_terminal", lambda stream=None: True)
    from tqdm import tqdm

    assert isinstance(progress.progress_bar(total=3, desc="x", disable=True), tqdm)
