"""P x K batch sampler that puts phone photos and shop images of the same product in one batch.

Each batch holds P distinct products and K images of each (P*K indices, grouped product by product).
For a product that has both domains, its K images alternate user / shop (a round robin over the
two shuffled domain lists, starting with a phone photo), so every such product contributes at
least one phone photo and one shop image -- the consumer-to-shop pairs the losses need. When a
product has fewer than K images, the remaining slots repeat its images (drawn at random, as in
PML's ``MPerClassSampler``); augmentation makes the repeats different views. Products with fewer
than 2 images cannot form a positive pair and are never sampled.

Why not PML's ``MPerClassSampler``: it gives m images per class but (1) ignores domains, so a
product's K images may all be shop images (or all phone photos) and the batch has no
consumer-to-shop positive; (2) draws from a global numpy RNG, so it is not reproducible per
(seed, epoch) and has no ``set_epoch``; (3) has no notion of DDP ranks.

Epochs: every epoch visits the eligible products in a fresh permutation (seeded by (seed, epoch)),
P at a time, so each product appears at most once per ``n_eligible // P`` batches.

DDP (``num_replicas`` > 1): each rank gets whole P x K batches -- a disjoint, equal-length share of
one global batch stream (global batch b goes to rank b % num_replicas). Every rank's batch keeps
the P x K structure that the pair losses rely on (losses are computed per rank on the local batch);
the effective global batch is num_replicas * P * K. All ranks must use the same seed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class SamplerError(ValueError):
    """A batch shape the data cannot fill, or inconsistent sampler arguments."""


class PKBatchSampler(Sampler[list[int]]):
    """Batch sampler (``DataLoader(dataset, batch_sampler=...)``) of P products x K images.

    Args:
        labels: product index of every dataset item.
        domains: domain of every dataset item (0 = shop, 1 = user/phone photo).
        products_per_batch: P (>= 1).
        images_per_product: K (>= 2).
        seed: base seed; batches depend only on (seed, epoch, num_replicas, rank).
        batches_per_epoch: batches per epoch *per rank*; default: one pass over the eligible
            products, ``n_eligible // (P * num_replicas)`` (at least 1).
        num_replicas, rank: DDP sharding (see the module docstring).
        with_sample_seeds: yield ``(index, sample_seed)`` pairs instead of indices. The seed is a
            function of (seed, epoch, global batch, position) only, so a dataset that seeds its
            augmentation with it (``TrainImages``) gives the same tensors whatever the number of
            DataLoader workers or which worker loads the batch (docs/reproducibility.md).
    """

    def __init__(self, labels: Sequence[int], domains: Sequence[int], products_per_batch: int,
                 images_per_product: int, seed: int = 0, batches_per_epoch: int | None = None,
                 num_replicas: int = 1, rank: int = 0, with_sample_seeds: bool = False) -> None:
        labels_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
        domains_arr = np.asarray(domains, dtype=np.int64).reshape(-1)
        if len(labels_arr) != len(domains_arr):
            raise SamplerError(f"labels ({len(labels_arr)}) and domains ({len(domains_arr)}) differ in length")
        bad = sorted(set(np.unique(domains_arr).tolist()) - {0, 1})
        if bad:
            raise SamplerError(f"domains must be 0 (shop) or 1 (user); found {bad}")
        P, K = int(products_per_batch), int(images_per_product)
        if P < 1:
            raise SamplerError(f"P x K batch: P (products per batch) must be >= 1, got P={P}")
        if K < 2:
            raise SamplerError(f"P x K batch: K (images per product) must be >= 2 to form positive pairs, "
                               f"got K={K}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise SamplerError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got "
                               f"num_replicas={num_replicas}, rank={rank}")
        by_product: dict[int, list[int]] = defaultdict(list)
        for i, lab in enumerate(labels_arr.tolist()):
            by_product[lab].append(i)
        self.products = sorted(p for p, idx in by_product.items() if len(idx) >= 2)
        n_products = len(by_product)
        if len(self.products) < P:
            raise SamplerError(
                f"cannot fill a P x K = {P} x {K} batch: it needs P={P} distinct products with >= 2 images "
                f"each, but the data has only {len(self.products)} such products (of {n_products} products, "
                f"{len(labels_arr)} images); lower data.products_per_batch or add data")
        # per eligible product: (user image indices, shop image indices)
        self.user = {p: [i for i in by_product[p] if domains_arr[i] == 1] for p in self.products}
        self.shop = {p: [i for i in by_product[p] if domains_arr[i] == 0] for p in self.products}
        self.P, self.K, self.seed = P, K, int(seed)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        if batches_per_epoch is None:
            batches_per_epoch = max(1, len(self.products) // (P * self.num_replicas))
        if batches_per_epoch < 1:
            raise SamplerError(f"batches_per_epoch must be >= 1, got {batches_per_epoch}")
        self.batches_per_epoch = int(batches_per_epoch)
        self.with_sample_seeds = bool(with_sample_seeds)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call at the start of every epoch (as with ``DistributedSampler``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _product_groups(self, rng: np.random.Generator, n_batches: int) -> list[list[int]]:
        """``n_batches`` groups of P distinct products, walking through fresh permutations."""
        groups: list[list[int]] = []
        queue: list[int] = []
        deferred: list[int] = []
        for _ in range(n_batches):
            group: list[int] = []
            pending, deferred = deferred, []
            while len(group) < self.P:
                if pending:
                    p = pending.pop(0)
                else:
                    if not queue:
                        queue = rng.permutation(self.products).tolist()
                    p = queue.pop(0)
                if p in group:  # crossed into a new permutation: keep it for the next batch
                    deferred.append(p)
                else:
                    group.append(p)
            deferred = pending + deferred
            groups.append(group)
        return groups

    def _images(self, rng: np.random.Generator, product: int) -> list[int]:
        """K images of a product, alternating user / shop while both last, then repeats."""
        user = rng.permutation(self.user[product]).tolist()
        shop = rng.permutation(self.shop[product]).tolist()
        chosen: list[int] = []
        while len(chosen) < self.K and (user or shop):
            for pool in (user, shop):
                if pool and len(chosen) < self.K:
                    chosen.append(pool.pop(0))
        if len(chosen) < self.K:
            everything = self.user[product] + self.shop[product]
            chosen += rng.choice(everything, size=self.K - len(chosen), replace=True).tolist()
        return [int(i) for i in chosen]

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_global = self.batches_per_epoch * self.num_replicas
        for b, group in enumerate(self._product_groups(rng, n_global)):
            # draw images for every global batch (same RNG stream on all ranks), keep ours
            batch = [i for p in group for i in self._images(rng, p)]
            if b % self.num_replicas == self.rank:
                if self.with_sample_seeds:
                    seeds = np.random.SeedSequence([self.seed, self.epoch, b]).generate_state(len(batch))
                    yield [(i, int(s)) for i, s in zip(batch, seeds, strict=True)]
                else:
                    yield batch
