"""``dp-search build --engine ray`` on a real 2-node Ray cluster (``ray.cluster_utils.Cluster``).

What each test shows (issue 21, "Must show"):

* the merged index equals the one-process build: every byte of the file except the 20-character
  ``created_at`` value in the metadata block and the whole-file checksum in the trailer that
  covers it -- header, space id, int8 scales, id offsets, id bytes, vector block, item metadata
  and the rest of the index info -- for float32 and int8 storage; rows come from both nodes (the
  node id each shard's done-marker records);
* a worker SIGKILLed mid-run, and separately the driver, then ``--resume``: the run completes,
  exactly the shards without a done-marker are embedded again (their markers are new, the others
  untouched), and the index is the same;
* bad input: one line, within 30 s, nothing written outside the workdir.

Tests never run ``ray stop`` (it would kill every Ray process of the machine, other users' too):
the cluster is this module's own ``Cluster`` and ends with ``Cluster.shutdown``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from support.tiny_model import build_tiny_model, write_catalogue

from deepproduct.sdk.cli import main
from deepproduct.sdk.gallery_index import GalleryIndex
from deepproduct.sdk.index_format import read_index_header
from deepproduct.sdk.output_policy import write_marker

ray = pytest.importorskip("ray", reason="the distributed extra (Ray) is not installed")

DP_SEARCH = str(Path(sys.executable).with_name("dp-search"))
DRIVER = str(Path(__file__).with_name("ray_driver.py"))
SHARD_SIZE = 40
PRODUCTS, PER_PRODUCT = 40, 8  # 320 readable images + 1 corrupt one = 321 entries, 9 shards


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray-catalogue") / "catalogue"
    write_catalogue(root, products=PRODUCTS, per_product=PER_PRODUCT)
    (root / "products.json").write_text(json.dumps({"p000": {"title": "Blue mug", "category": "mug"},
                                                    "p017": {"title": "Shoe", "category": "shoe", "size": 42.5}}))
    (root / "p005" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of 1 CPU each on this host, with token auth (Ray >= 2.59 wants it on a multi-node
    local cluster): RAY_AUTH_MODE and a fresh RAY_AUTH_TOKEN, inherited by every node and driver."""
    from ray.cluster_utils import Cluster

    from deepproduct.sdk.distributed.ray_engine import _refresh_auth

    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    try:
        with mock.patch.dict(os.environ, token):
            _refresh_auth()
            c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            try:
                c.add_node(num_cpus=1)
                c.wait_for_nodes()
                yield c
            finally:
                c.shutdown()
    finally:
        _refresh_auth()


@pytest.fixture(scope="module")
def local_builds(tiny_model_dir, catalogue, tmp_path_factory) -> dict[str, Path]:
    """The one-process builds the Ray builds must equal (float32 and int8)."""
    out = tmp_path_factory.mktemp("local")
    paths = {}
    for storage in ("float32", "int8"):
        paths[storage] = out / f"local-{storage}.dpindex"
        res = CliRunner().invoke(main, ["build", "--model", str(tiny_model_dir), "--images", str(catalogue),
                                        "--out", str(paths[storage]), "--storage", storage, "--skip-bad",
                                        "--no-progress"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return paths


def dp_search(*args: object, timeout: float = 180) -> subprocess.CompletedProcess:
    """The real console script in its own process: a driver like a user's."""
    return subprocess.run([DP_SEARCH, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ray_args(model: Path, images: Path, out: Path, workdir: Path, address: str, *extra: object) -> list:
    return ["build", "--engine", "ray", "--model", model, "--images", images, "--out", out, "--workdir", workdir,
            "--address", address, "--shard-size", SHARD_SIZE, "--skip-bad", "--no-progress", *extra]


def assert_same_index(ray_index: Path, local_index: Path) -> None:
    """Byte-identical except the created_at value (same length) and the trailer's checksum over it."""
    a, b = ray_index.read_bytes(), local_index.read_bytes()
    assert len(a) == len(b)
    ha, hb = read_index_header(ray_index), read_index_header(local_index)
    assert a[:256] == b[:256]  # the header: counts, dim, storage, section table, header CRC
    for name in ("space_id", "scales", "id_offsets", "id_bytes", "vectors"):
        sa, sb = ha.sections[name], hb.sections[name]
        assert a[sa.offset:sa.end] == b[sb.offset:sb.end], name
    meta = ha.sections["metadata"]
    ma, mb = json.loads(a[meta.offset:meta.end]), json.loads(b[meta.offset:meta.end])
    stamp_a, stamp_b = ma["index"].pop("created_at"), mb["index"].pop("created_at")
    assert ma == mb and len(stamp_a) == len(stamp_b) == 20
    patched = a.replace(f'"created_at":"{stamp_a}"'.encode(), f'"created_at":"{stamp_b}"'.encode(), 1)
    assert patched[:-8] == b[:-8]  # everything but the trailer's whole-file checksum
    ia, ib = GalleryIndex.load(ray_index), GalleryIndex.load(local_index)  # both verify their checksums
    assert ia.product_ids == ib.product_ids and ia.metadata == ib.metadata
    assert abs(ia.dequantized() - ib.dequantized()).max() <= 1e-6


def done_markers(workdir: Path) -> dict[int, Path]:
    return {int(p.name[6:11]): p for p in (workdir / "shards").glob("shard-*.done.json")}


def summary_counts(text: str) -> tuple[int, int]:
    """(embedded, reused) from the summary line."""
    line = next(ln for ln in text.splitlines() if ln.startswith("ray build:"))
    part = line.split("shards:", 1)[1]
    return int(part.split("embedded")[0].strip()), int(part.split(",")[1].split("reused")[0].strip())


# ------------------------------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def ray_built(cluster, tiny_model_dir, catalogue, local_builds, tmp_path_factory) -> Path:
    """One Ray build on the 2-node cluster; returns its workdir (later tests copy it)."""
    out = tmp_path_factory.mktemp("ray")
    workdir = out / "work"
    res = dp_search(*ray_args(tiny_model_dir, catalogue, out / "ray.dpindex", workdir, cluster.address,
                              "--actors", 2))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ray build: 321 images, 1 bad, 9 shards: 9 embedded, 0 reused" in res.stdout
    assert "corrupt.jpg" in res.stderr  # listed as skipped, as the one-process build lists it
    return workdir


def test_two_nodes_equal_one_process_build(ray_built, cluster, tiny_model_dir, catalogue, local_builds):
    workdir = ray_built
    assert_same_index(workdir.parent / "ray.dpindex", local_builds["float32"])
    # Rows from both nodes: each done-marker names the node whose actor embedded the shard.
    nodes = {json.loads(p.read_text())["node_id"] for p in done_markers(workdir).values()}
    assert nodes == {n.node_id for n in cluster.list_all_nodes()} and len(nodes) == 2
    assert len(done_markers(workdir)) == 9 and len(list((workdir / "shards").glob("shard-*.npy"))) == 9
    # int8 from the same shards (all reused, no actor started): scales fitted on the merged vectors.
    res = dp_search(*ray_args(tiny_model_dir, catalogue, workdir.parent / "ray-int8.dpindex", workdir,
                              cluster.address, "--resume", "--storage", "int8"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert summary_counts(res.stdout) == (0, 9)
    assert_same_index(workdir.parent / "ray-int8.dpindex", local_builds["int8"])


def _start_slow_driver(tmp_path: Path, model: Path, images: Path, address: str, **extra: object):
    started = tmp_path / "started"
    started.mkdir()
    args = {"model": str(model), "images": str(images), "out": str(tmp_path / "ray.dpindex"),
            "workdir": str(tmp_path / "work"), "address": address, "split": None, "domain": None,
            "storage": "float32", "skip_bad": True, "batch_size": 32, "fmt": "onnx", "precision": "fp32",
            "progress": False, "resume": False, "shard_size": SHARD_SIZE, "actors": 2, "threads_per_actor": 1,
            "worker_retries": 3, "started": str(started), "delay": 1.5, **extra}
    proc = subprocess.Popen([sys.executable, DRIVER, json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, started, tmp_path / "work"


def _wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the Ray run to get half-way"
        time.sleep(0.05)


def _resume_and_check(tmp_path, workdir, model, images, address, local_index) -> tuple[int, int]:
    """--resume after a kill: only the shards without a marker are embedded; their markers alone change."""
    time.sleep(1.0)  # the dead driver's job is torn down by Ray; nothing of it writes after this
    before = {i: p.stat().st_mtime_ns for i, p in done_markers(workdir).items()}
    assert 0 < len(before) < 9, before
    res = dp_search(*ray_args(model, images, tmp_path / "ray.dpindex", workdir, address, "--resume"))
    assert res.returncode == 0, res.stderr[-3000:]
    embedded, reused = summary_counts(res.stdout)
    assert (embedded, reused) == (9 - len(before), len(before))
    after = {i: p.stat().st_mtime_ns for i, p in done_markers(workdir).items()}
    assert set(after) == set(range(9))
    assert {i for i in after if before.get(i) != after[i]} == set(range(9)) - set(before)  # only those redone
    assert_same_index(tmp_path / "ray.dpindex", local_index)
    return embedded, reused


def test_worker_killed_then_resume(cluster, tiny_model_dir, catalogue, local_builds, tmp_path):
    # No restarts: the SIGKILLed worker ends the run (with restarts Ray would retry its shard itself).
    proc, started, workdir = _start_slow_driver(tmp_path, tiny_model_dir, catalogue, cluster.address,
                                                worker_retries=0)
    try:
        _wait_for(lambda: len(done_markers(workdir)) >= 2)
        busy = [p for p in started.iterdir() if int(p.name.split("-")[0]) not in done_markers(workdir)]
        victim = int(busy[0].name.split("-")[1])
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    last = err.strip().splitlines()[-1]
    assert "Ray run stopped" in last and "--resume" in last, err[-2000:]
    _resume_and_check(tmp_path, workdir, tiny_model_dir, catalogue, cluster.address, local_builds["float32"])


def test_driver_killed_then_resume(cluster, tiny_model_dir, catalogue, local_builds, tmp_path):
    proc, _, workdir = _start_slow_driver(tmp_path, tiny_model_dir, catalogue, cluster.address)
    try:
        _wait_for(lambda: len(done_markers(workdir)) >= 2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "ray.dpindex").exists()
    _resume_and_check(tmp_path, workdir, tiny_model_dir, catalogue, cluster.address, local_builds["float32"])


# ------------------------------------------------------------------------------------------ bad input
def _one_line_error(tmp_path: Path, args: list, *, code: int, words: tuple[str, ...], keep: Path | None = None,
                    monkeypatch=None) -> str:
    """Run in-process; one ``dp-search: error:`` line, within 30 s, nothing new outside ``keep``."""
    before = sorted(p for p in tmp_path.rglob("*") if keep is None or keep not in (p, *p.parents))
    t0 = time.monotonic()
    res = CliRunner().invoke(main, [str(a) for a in args])
    elapsed = time.monotonic() - t0
    after = sorted(p for p in tmp_path.rglob("*") if keep is None or keep not in (p, *p.parents))
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == code, res.output
    assert len(lines) == 1 and lines[0].startswith("dp-search: error: "), res.output
    assert all(w in lines[0] for w in words), lines[0]
    assert elapsed < 30, elapsed
    assert after == before  # nothing written (outside the workdir, where one is given)
    return lines[0]


def _copy_workdir(ray_built: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(ray_built, work)
    return work


def test_ray_not_installed(tiny_model_dir, catalogue, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    _one_line_error(tmp_path, ["build", "--engine", "ray", "--model", tiny_model_dir, "--images", catalogue,
                               "--out", tmp_path / "x.dpindex", "--no-progress"],
                    code=1, words=("pip install 'deepproduct[distributed]'", "Ray 2.60.0"))


def test_unreachable_address(tiny_model_dir, catalogue, tmp_path):
    _one_line_error(tmp_path, ["build", "--engine", "ray", "--model", tiny_model_dir, "--images", catalogue,
                               "--out", tmp_path / "x.dpindex", "--address", "127.0.0.1:9", "--no-progress"],
                    code=1, words=("--address 127.0.0.1:9", "no Ray cluster reachable"))


def test_workdir_of_another_model_or_catalogue(ray_built, tiny_model_dir, catalogue, tmp_path):
    work = _copy_workdir(ray_built, tmp_path)
    other_model = build_tiny_model(tmp_path / "other-model", seed=3)
    base = ["build", "--engine", "ray", "--images", catalogue, "--out", tmp_path / "x.dpindex", "--workdir", work,
            "--shard-size", SHARD_SIZE, "--resume", "--skip-bad", "--no-progress"]
    _one_line_error(tmp_path, [*base, "--model", other_model], code=1, words=("another model",), keep=work)
    smaller = tmp_path / "smaller"
    shutil.copytree(catalogue, smaller)
    (smaller / "p039" / "img7.png").unlink()
    base[base.index(catalogue)] = smaller
    _one_line_error(tmp_path, [*base, "--model", tiny_model_dir], code=1, words=("another catalogue",), keep=work)
    base[base.index(smaller)] = catalogue
    base[base.index(SHARD_SIZE)] = 50
    _one_line_error(tmp_path, [*base, "--model", tiny_model_dir], code=1, words=("--shard-size 50",), keep=work)
    # Without --resume an existing workdir is not silently continued either.
    base[base.index(50)] = SHARD_SIZE
    base.remove("--resume")
    _one_line_error(tmp_path, [*base, "--model", tiny_model_dir], code=1, words=("pass --resume",), keep=work)


def test_damaged_shard_on_resume(ray_built, tiny_model_dir, catalogue, tmp_path):
    work = _copy_workdir(ray_built, tmp_path)
    shard = work / "shards" / "shard-00003.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0x01
    shard.write_bytes(bytes(data))
    line = _one_line_error(tmp_path, ["build", "--engine", "ray", "--model", tiny_model_dir, "--images", catalogue,
                                      "--out", tmp_path / "x.dpindex", "--workdir", work, "--shard-size", SHARD_SIZE,
                                      "--resume", "--skip-bad", "--no-progress"],
                           code=1, words=("shard-00003.npy", "checksum"), keep=work)
    assert "shard-00003.done.json" in line  # says how to redo it


def test_folder_that_is_not_our_workdir(tiny_model_dir, catalogue, tmp_path):
    users = tmp_path / "users-folder"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    args = ["build", "--engine", "ray", "--model", tiny_model_dir, "--images", catalogue,
            "--out", tmp_path / "x.dpindex", "--workdir", users, "--resume", "--no-progress"]
    _one_line_error(tmp_path, args, code=3, words=("not a Ray workdir of dp-search",))
    assert (users / "notes.txt").read_text() == "mine"
    export_like = tmp_path / "an-export"
    export_like.mkdir()
    write_marker(export_like, "dp-export", "export")
    (export_like / "model.onnx").write_bytes(b"x")
    args[args.index(users)] = export_like
    _one_line_error(tmp_path, args, code=3, words=("another DeepProduct output",))


def test_ray_options_need_the_ray_engine(tiny_model_dir, catalogue, tmp_path):
    _one_line_error(tmp_path, ["build", "--model", tiny_model_dir, "--images", catalogue,
                               "--out", tmp_path / "x.dpindex", "--resume", "--actors", "2"],
                    code=2, words=("--resume, --actors only apply with --engine ray",))
