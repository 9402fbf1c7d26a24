"""The Ray build's plan, shard files and workdir rules, without Ray (fast, no cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepproduct.sdk.catalogue import CatalogueEntry
from deepproduct.sdk.distributed import DistributedError
from deepproduct.sdk.distributed.plan import (
    Workdir,
    check_workdir,
    load_shard,
    make_plan,
    open_workdir,
    verify_shard,
    write_shard,
)
from deepproduct.sdk.output_policy import OutputRefused

MODEL = {"embedding_space_id": "a" * 64, "sha256": "b" * 64, "file": "m.onnx", "format": "onnx", "precision": "fp32"}


def entries(tmp_path: Path, n: int) -> list[CatalogueEntry]:
    out = []
    for i in range(n):
        p = tmp_path / f"img{i:03d}.png"
        p.write_bytes(b"x" * (i + 1))
        out.append(CatalogueEntry(p, f"p{i // 3}", {"image": p.name, "n": i}))
    return out


def test_shards_are_fixed_and_hashes_stable(tmp_path):
    es = entries(tmp_path, 10)
    a, b = make_plan(es, 4, MODEL), make_plan(list(es), 4, MODEL)
    assert [(s.shard_id, s.start, s.stop) for s in a.shards] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert a.plan_id == b.plan_id and [s.entries_sha256 for s in a.shards] == [s.entries_sha256 for s in b.shards]
    assert make_plan(es, 5, MODEL).plan_id != a.plan_id  # the shard size is part of the identity
    assert make_plan(es, 4, {**MODEL, "sha256": "c" * 64}).plan_id != a.plan_id
    (tmp_path / "img009.png").write_bytes(b"another image")  # same path, other size: another catalogue
    c = make_plan(es, 4, MODEL)
    assert c.catalogue_sha256 != a.catalogue_sha256 and c.shards[0].entries_sha256 == a.shards[0].entries_sha256


def test_shard_round_trip_and_damage(tmp_path):
    plan = make_plan(entries(tmp_path, 6), 6, MODEL)
    shard = plan.shards[0]
    shards = tmp_path / "shards"
    vec = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    write_shard(shards, 0, plan_id=plan.plan_id, entries_sha256=shard.entries_sha256, product_ids=["p0"] * 5,
                metadata=[{}] * 5, vectors=vec, ok=[0, 1, 2, 4, 5], failures=[(3, "bad")], images=6)
    data = load_shard(shards, shard, plan.plan_id)
    assert np.array_equal(data.vectors, vec) and data.ok.tolist() == [0, 1, 2, 4, 5]
    assert data.failures == [(3, "bad")]
    assert sorted(p.name for p in shards.iterdir()) == ["shard-00000.done.json", "shard-00000.json",
                                                        "shard-00000.npy"]
    raw = bytearray((shards / "shard-00000.json").read_bytes())
    raw[-3] ^= 1
    (shards / "shard-00000.json").write_bytes(bytes(raw))
    with pytest.raises(DistributedError, match="checksum"):
        verify_shard(shards, shard, plan.plan_id)
    with pytest.raises(DistributedError, match="another model"):
        verify_shard(shards, shard, "0" * 64)


def test_workdir_rules(tmp_path):
    es = entries(tmp_path, 3)
    plan = make_plan(es, 2, MODEL)
    work = tmp_path / "work"
    assert check_workdir(work, [], resume=False) == "new" and not work.exists()
    open_workdir(work, plan, "new")
    assert (work / ".deepproduct-output.json").is_file() and (work / "workdir.json").is_file()
    with pytest.raises(DistributedError, match="pass --resume"):
        check_workdir(work, [], resume=False)
    assert check_workdir(work, [], resume=True) == "existing"
    with pytest.raises(DistributedError, match="another catalogue"):
        open_workdir(work, make_plan(es[:2], 2, MODEL), "existing")
    (work / "shards" / ".shard-00001.npy.abc123.tmp").write_bytes(b"half")  # a writer killed mid-file
    (work / "shards" / "notes.tmp").write_bytes(b"not ours")
    assert Workdir(work).remove_leftovers() == 1 and (work / "shards" / "notes.tmp").exists()
    with pytest.raises(OutputRefused, match="inside this command's input folder"):
        check_workdir(tmp_path / "inside", [tmp_path], resume=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputRefused, match="not a folder"):
        check_workdir(tmp_path / "afile", [], resume=True)


def test_sdk_imports_without_ray():
    """Every module of the engine imports where Ray is missing; Ray is imported only when a build runs."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "import deepproduct.sdk.cli, deepproduct.sdk.distributed.build, deepproduct.sdk.distributed.merge\n"
            "import deepproduct.sdk.distributed.plan, deepproduct.sdk.distributed.ray_engine as e\n"
            "try:\n    e.import_ray()\nexcept ValueError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'deepproduct[distributed]'" in out.stdout
