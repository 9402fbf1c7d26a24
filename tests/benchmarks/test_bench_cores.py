"""``dp-bench search --cores``: the JVM and JS cores' harnesses run on the SDK's index files."""

from __future__ import annotations

import shutil

import pytest

from deepproduct.benchmarks.schema import validate_record
from deepproduct.benchmarks.search_bench import bench_search


@pytest.mark.slow  # compiles the JVM core and starts java and node: ~30 s under load
def test_core_harnesses_agree_with_the_sdk() -> None:
    records = bench_search([3000], batches=[1], runs=2, warmup=1, budget_s=0.2, bandwidth_bytes=16 << 20,
                           progress=False, cores=True, core_runs=4)
    cores = [r for r in records if "agrees_with_sdk" in r]
    impls = {r["impl"] for r in cores}
    want = set()
    if shutil.which("javac") and shutil.which("java"):
        want |= {"jvm-core", "jvm-core-products"}
    if shutil.which("node"):
        want |= {"js-core", "js-core-products"}
    assert want, "neither a JDK nor node here: the core harnesses cannot run"
    assert impls == want
    for r in cores:
        validate_record(r)
        assert r["agrees_with_sdk"], r  # query 0's top-k positions equal the SDK's, items and products
        assert r["median_ms"] > 0 and r["threads"] == 1 and r["batch"] == 1 and r["gallery_size"] == 3000
    assert {r["storage"] for r in cores} == {"float32", "int8"}
