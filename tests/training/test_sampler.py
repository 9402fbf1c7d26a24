"""P x K sampler invariants: structure, domains, determinism, epochs, DDP shards, errors."""

from __future__ import annotations

from collections import Counter

import pytest

from deepproduct.training.data.sampler import PKBatchSampler, SamplerError


def make_data() -> tuple[list[int], list[int]]:
    """20 products: most with 2 shop + 3 user images, some single-domain, some too small."""
    labels: list[int] = []
    domains: list[int] = []
    for p in range(20):
        if p < 14:
            doms = [0, 0, 1, 1, 1]  # both domains
        elif p < 16:
            doms = [0, 0, 0]  # shop only
        elif p < 18:
            doms = [1, 1]  # user only, fewer than K images
        else:
            doms = [1]  # a single image: never sampled
        labels += [p] * len(doms)
        domains += doms
    # interleave so that indices of one product are not contiguous
    order = sorted(range(len(labels)), key=lambda i: (i * 7919) % len(labels))
    return [labels[i] for i in order], [domains[i] for i in order]


LABELS, DOMAINS = make_data()


def batches(**kw) -> list[list[int]]:
    args = dict(products_per_batch=4, images_per_product=4, seed=3)
    args.update(kw)
    sampler = PKBatchSampler(LABELS, DOMAINS, **args)
    return list(sampler)


def test_structure_and_domains() -> None:
    sampler = PKBatchSampler(LABELS, DOMAINS, products_per_batch=4, images_per_product=4, seed=3,
                             batches_per_epoch=12)
    out = list(sampler)
    assert len(out) == len(sampler) == 12
    both = {p for p in set(LABELS) if {DOMAINS[i] for i in range(len(LABELS)) if LABELS[i] == p} == {0, 1}}
    for batch in out:
        assert len(batch) == 16
        groups = [batch[i:i + 4] for i in range(0, 16, 4)]
        products = [LABELS[g[0]] for g in groups]
        assert len(set(products)) == 4  # P distinct products
        for p, g in zip(products, groups, strict=True):
            assert all(LABELS[i] == p for i in g)  # K images of that product
            assert p < 18  # products with one image are never sampled
            if p in both:
                doms = Counter(DOMAINS[i] for i in g)
                assert doms[0] >= 1 and doms[1] >= 1
                assert len(set(g)) == 4  # enough distinct images: no repeats
                assert doms[0] == 2 and doms[1] == 2  # alternating user / shop


def test_default_epoch_is_one_pass_over_products() -> None:
    out = batches()
    assert len(out) == 18 // 4  # 18 products with >= 2 images
    seen = [LABELS[b[i]] for b in out for i in range(0, 16, 4)]
    assert len(seen) == len(set(seen))  # each product at most once per epoch


def test_determinism_and_epochs() -> None:
    s1 = PKBatchSampler(LABELS, DOMAINS, 4, 4, seed=3)
    s2 = PKBatchSampler(LABELS, DOMAINS, 4, 4, seed=3)
    assert list(s1) == list(s2)
    assert list(s1) == list(s1)  # re-iterating the same epoch repeats it
    s1.set_epoch(1)
    s2.set_epoch(1)
    e1 = list(s1)
    assert e1 == list(s2)
    s1.set_epoch(0)
    assert e1 != list(s1)  # different epochs differ
    assert list(PKBatchSampler(LABELS, DOMAINS, 4, 4, seed=4)) != list(s1)  # so do seeds


def test_ddp_shards_disjoint_equal_and_cover() -> None:
    world = 3
    single = batches(batches_per_epoch=4 * world)
    shards = [batches(batches_per_epoch=4, num_replicas=world, rank=r) for r in range(world)]
    assert all(len(s) == 4 for s in shards)
    # each rank's batches are the global stream's batches r, r + world, ...: disjoint and covering
    for r, shard in enumerate(shards):
        assert shard == single[r::world]
    flat = [tuple(b) for s in shards for b in s]
    assert sorted(flat) == sorted(tuple(b) for b in single)
    # default length: equal on every rank
    lengths = {len(PKBatchSampler(LABELS, DOMAINS, 4, 4, num_replicas=2, rank=r)) for r in range(2)}
    assert lengths == {18 // 8}


def test_unfillable_batches_are_clear_errors() -> None:
    with pytest.raises(SamplerError, match=r"P=19 .*only 18 such products"):
        PKBatchSampler(LABELS, DOMAINS, products_per_batch=19, images_per_product=4)
    with pytest.raises(SamplerError, match="K=1"):
        PKBatchSampler(LABELS, DOMAINS, products_per_batch=4, images_per_product=1)
    with pytest.raises(SamplerError, match="differ in length"):
        PKBatchSampler(LABELS, DOMAINS[:-1], 4, 4)
    with pytest.raises(SamplerError, match="rank"):
        PKBatchSampler(LABELS, DOMAINS, 4, 4, num_replicas=2, rank=2)
    with pytest.raises(SamplerError, match=r"found \[2\]"):
        PKBatchSampler(LABELS, [2] * len(LABELS), 4, 4)


def test_works_as_dataloader_batch_sampler() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(torch.tensor(LABELS), torch.tensor(DOMAINS))
    loader = DataLoader(ds, batch_sampler=PKBatchSampler(LABELS, DOMAINS, 3, 2, seed=0))
    labels, domains = next(iter(loader))
    assert labels.shape == (6,) and len(set(labels.tolist())) == 3
