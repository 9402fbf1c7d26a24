"""The paired int8 Recall@1 gate (export/recall_gate.py): the statistics on hand-made hit vectors,
then the real thing on a tiny model -- it passes int8 re-quantised with another calibration seed
and fails a deliberately damaged int8 model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image, ImageEnhance
from scipy.stats import binomtest
from support.export import legacy_onnx_export, model_info_of

from deepproduct.export import parity, recall_gate
from deepproduct.export.calibration import ImageSet, calibration_source, load_tensors, resolve_image_source
from deepproduct.export.runtimes import run_onnx
from deepproduct.sdk.preprocessing import PreprocessingSpec


def _hits(n: int, ref_right: int, losses: int, gains: int) -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros(n, bool)
    ref[:ref_right] = True
    cand = ref.copy()
    cand[:losses] = False
    cand[ref_right:ref_right + gains] = True
    return ref, cand


def test_no_discordant_query_passes_with_p_one():
    ref, cand = _hits(368, 300, 0, 0)
    g = recall_gate.paired_gate(ref, cand)
    assert g.p_value == 1.0 and not g.failed and g.drop_points == 0.0 and not g.underpowered


def test_noise_sized_drop_passes_but_a_supported_one_fails():
    # 2.2 points observed (12 lost, 4 gained of 368): the old raw rule failed this, the test does not.
    g = recall_gate.paired_gate(*_hits(368, 300, 12, 4))
    assert g.drop_points == pytest.approx(8 / 368 * 100) and g.drop_points > 2.0
    assert not g.failed and g.p_value > 0.3
    # 9.5 points (40 lost, 5 gained): far beyond the margin, and supported.
    g = recall_gate.paired_gate(*_hits(368, 300, 40, 5))
    assert g.failed and g.p_value < 1e-4 and "exceeds the 2.0-point margin" in g.message()


def test_zero_margin_is_the_exact_one_sided_mcnemar_test():
    ref, cand = _hits(200, 150, 9, 2)
    g = recall_gate.paired_gate(ref, cand, margin_points=0.0)
    assert g.p_value == pytest.approx(binomtest(9, 11, 0.5, alternative="greater").pvalue)


def test_a_drop_the_margin_covers_even_if_every_flip_is_a_loss_cannot_fail():
    # 3 discordant of 400 queries: at most 0.75 points, inside 2 points whatever the split.
    g = recall_gate.paired_gate(*_hits(400, 300, 3, 0))
    assert g.p_value == 1.0 and not g.failed


def test_few_queries_are_flagged_underpowered_and_bad_shapes_refused():
    assert recall_gate.paired_gate(*_hits(40, 30, 1, 1)).underpowered
    with pytest.raises(ValueError, match="equal non-empty"):
        recall_gate.paired_gate(np.ones(3, bool), np.ones(4, bool))


def test_query_hits_are_consumer_to_shop_top1():
    e = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8], [0.7, 0.3]], np.float32)
    hits = recall_gate.query_hits(e, ["a", "b", "a", "b", "b"], ["shop", "shop", "user", "user", "user"])
    assert hits.tolist() == [True, True, False]
    assert recall_gate.query_hits(e, None, None) is None


def test_exact_error_rates_of_the_rule():
    """Level at the margin <= alpha; almost never fires on a model that lost nothing (docs table)."""
    assert recall_gate.rejection_probability(368, 0.06, 0.02) == pytest.approx(0.035, abs=0.002)
    assert recall_gate.rejection_probability(368, 0.06, 0.02) <= recall_gate.ALPHA
    assert recall_gate.rejection_probability(368, 0.06, 0.0) < 0.005
    assert recall_gate.rejection_probability(368, 0.06, 0.05) == pytest.approx(0.795, abs=0.01)


# ------------------------------------------------------------------ on a real (tiny) int8 model
@pytest.fixture(scope="module")
def gate_data(tmp_path_factory) -> Path:
    """A tiny benchmark (30 held-out products): its train split calibrates, its shop images form the gallery."""
    from deepproduct.training.data.synth import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("gatedata")
    return generate_synthetic_dataset(out, n_products=60, seed=0, n_distractors=2, image_size=64, workers=1,
                                      test_fraction=0.5)


def _near_duplicate_queries(test: ImageSet, folder: Path) -> ImageSet:
    """Gallery: the held-out shop images; queries: two re-lit JPEG copies of each product's first one.

    An untrained tiny net retrieves near-duplicates (it cannot match the real phone photos: R@1 7%),
    so the fp32 reference has enough hits for a damaged model to lose.
    """
    paths, pids, domains, seen = [], [], [], set()
    for path, pid, domain in zip(test.paths, test.product_ids, test.domains, strict=True):
        if domain != "shop":
            continue
        paths.append(path), pids.append(pid), domains.append("shop")
        if pid in seen:
            continue
        seen.add(pid)
        for k, factor in enumerate((0.95, 1.05)):
            query = folder / f"{pid}_q{k}.jpg"
            ImageEnhance.Brightness(Image.open(path).convert("RGB")).enhance(factor).save(query, quality=60)
            paths.append(query), pids.append(pid), domains.append("user")
    return ImageSet(paths, pids, domains, "near-duplicates of the held-out shop images")


@pytest.fixture(scope="module")
def tiny_int8(gate_data, tmp_path_factory):
    """tiny_cnn with a centred, whitened random head (else every embedding points the same way),
    fp32 ONNX and two int8 files from the exporter's quantiser that differ only in the calibration
    seed, calibrated on the train split with the parity images excluded."""
    from deepproduct.export.onnx.quantize import quantize_int8
    from deepproduct.training.models import build_embedding_net

    folder = tmp_path_factory.mktemp("gatemodel")
    torch.manual_seed(0)
    model = build_embedding_net("tiny_cnn", 32, "avg", pretrained=False).eval()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    size = model.input_size
    spec = PreprocessingSpec.for_input_size(size)
    parity_set, parity_x = load_tensors(_near_duplicate_queries(resolve_image_source(gate_data, folder), folder), spec)
    candidates = calibration_source(gate_data, folder, parity_set)
    assert candidates.source.endswith("(train split)") and candidates.excluded == 0
    _, train_x = load_tensors(candidates, spec, 64, seed=5, require=True)
    with torch.no_grad():
        _, pooled = model.pooled_features(torch.from_numpy(train_x))
        model.embed.weight.copy_(torch.randn(32, 32, generator=g) / (pooled.std(0) + 1e-6))
        model.embed.bias.copy_(-model.embed.weight @ pooled.mean(0))
        reference = model(torch.from_numpy(parity_x)).numpy()
    fp32 = legacy_onnx_export(model, folder / "model_fp32.onnx", size)
    info = model_info_of(model, preprocessing=spec)
    int8 = {}
    for seed in (0, 1):
        _, calib = load_tensors(candidates, spec, 32, seed=seed, require=True)
        int8[seed] = folder / f"model_int8_seed{seed}.onnx"
        quantize_int8(fp32, int8[seed], calib, info)
    return parity_set, parity_x, reference, int8


def _judge(emb, ref, images):
    return parity.judge("onnx/int8", "onnxruntime", emb, ref, 0.0, images.product_ids, images.domains,
                        parity.recall_at_1(ref, images.product_ids, images.domains), recall_gate.MARGIN_POINTS)


def test_gate_passes_int8_against_itself_requantised_with_another_seed(tiny_int8):
    images, x, reference, int8 = tiny_int8
    assert parity.recall_at_1(reference, images.product_ids, images.domains) > 0.6
    seed0, seed1 = run_onnx(int8[0], x), run_onnx(int8[1], x)
    assert not np.array_equal(seed0, seed1)  # the seed changed the calibration, hence the model
    for candidate, ref in ((seed0, reference), (seed1, reference), (seed1, seed0)):
        r = _judge(candidate, ref, images)
        assert r.passed, r.failures
        assert r.recall_gate is not None and not r.recall_gate["failed"]


def test_gate_fails_a_deliberately_damaged_int8_model(tiny_int8, tmp_path):
    """Half of every int8 conv's output channels zeroed: what a broken quantiser does."""
    images, x, reference, int8 = tiny_int8
    proto = onnx.load(str(int8[0]))
    damaged = 0
    for init in proto.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.int8 and w.ndim == 4:
            w = w.copy()
            w[: w.shape[0] // 2] = 0
            init.CopyFrom(numpy_helper.from_array(w, init.name))
            damaged += 1
    assert damaged >= 2
    onnx.save(proto, str(tmp_path / "damaged.onnx"))
    r = _judge(run_onnx(tmp_path / "damaged.onnx", x), reference, images)
    assert r.recall_gate is not None and r.recall_gate["failed"], r.recall_gate
    assert any("exceeds the 2.0-point margin" in f for f in r.failures)
