"""The int8 Recall@1 gate: a paired test on the same queries, not a threshold on a noisy difference.

Why: the fp32 and int8 artefacts answer the *same* held-out queries, so most queries are right
(or wrong) under both and carry no information about the quantisation; only the *discordant*
queries do -- ``losses`` (fp32 right, int8 wrong) and ``gains`` (fp32 wrong, int8 right). A raw
"R@1 drop > 2 points" rule on a 127-query subset failed a model whose whole-split R@1 was 0.5
points *above* fp32: three flipped queries were 2.4 points. See docs/export.md ("Recall@1 gate").

The rule (margin ``d`` = allowed drop, as a fraction; ``n`` queries; ``b`` losses, ``c`` gains,
``m = b + c``): the drop is ``(b - c) / n``. Conditional on ``m``, ``b ~ Binomial(m, pi)`` with
``pi = P(loss | discordant)``; a true drop of exactly ``d`` at the observed discordance rate
``m / n`` means ``pi0 = 1/2 + d * n / (2 m)``. The gate fails only when the exact one-sided
binomial test rejects ``pi <= pi0`` at level ``alpha`` (``scipy.stats.binomtest``,
alternative "greater"): a drop beyond the margin is statistically supported. With ``d = 0`` this
is the exact one-sided McNemar test. If ``pi0 >= 1`` even "every discordant query is a loss"
stays within the margin, so the gate cannot fail.

The gate is meant for the whole held-out split; with fewer than :data:`MIN_QUERIES` queries it
still runs (a deliberately broken model still fails) but records ``underpowered = True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepproduct.sdk.metrics import hits_at_k

from .thresholds import MARGIN_POINTS  # the policy lives in thresholds.py (a leaf)

#: One-sided significance level: at most this false-alarm rate at a true drop of exactly the margin.
ALPHA = 0.05
#: Queries below which the gate is flagged as underpowered (docs/export.md: with 6% of the queries
#: discordant, 300 queries catch a true 5-point drop with probability 0.68, 127 only with 0.27).
MIN_QUERIES = 300


def query_hits(embeddings: np.ndarray, product_ids: list[str] | None, domains: list[str] | None
               ) -> np.ndarray | None:
    """Per-query top-1 correctness, consumer-to-shop (user photos query shop images by cosine).

    Returns a bool array over the ``user`` images in order, or None without labels or domains.
    """
    if not product_ids or not domains:
        return None
    q = [i for i, d in enumerate(domains) if d == "user"]
    g = [i for i, d in enumerate(domains) if d == "shop"]
    if not q or not g:
        return None
    e = embeddings.astype(np.float64)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-30)
    top = np.argmax(e[q] @ e[g].T, axis=1)
    pids = np.asarray(product_ids, dtype=object)
    return hits_at_k(pids[np.asarray(g)[top]][:, None], pids[q], 1)


@dataclass(frozen=True)
class GateResult:
    """The paired comparison of one artefact with its fp32 reference on the same queries."""

    queries: int
    reference_hits: int
    candidate_hits: int
    losses: int  # fp32 right, candidate wrong
    gains: int  # fp32 wrong, candidate right
    drop_points: float  # (losses - gains) / queries * 100
    margin_points: float
    alpha: float
    p_value: float  # H0: true drop <= margin
    failed: bool
    underpowered: bool

    def to_dict(self) -> dict:
        out = asdict(self)
        out["drop_points"] = round(self.drop_points, 3)
        out["p_value"] = float(f"{self.p_value:.4g}")
        return out

    def message(self) -> str:
        return (f"Recall@1 drop {self.drop_points:.2f} points over {self.queries} queries "
                f"({self.losses} lost, {self.gains} gained) exceeds the {self.margin_points}-point margin "
                f"(one-sided exact binomial p = {self.p_value:.3g} < {self.alpha})")


def drop_p_value(losses: int, gains: int, queries: int, margin: float) -> float:
    """One-sided p-value of H0 "true Recall@1 drop <= margin" (margin as a fraction)."""
    from scipy.stats import binomtest

    discordant = losses + gains
    if discordant == 0:
        return 1.0
    pi0 = 0.5 + margin * queries / (2.0 * discordant)
    if pi0 >= 1.0:
        return 1.0
    return float(binomtest(losses, discordant, pi0, alternative="greater").pvalue)


def paired_gate(reference_hits: np.ndarray, candidate_hits: np.ndarray, margin_points: float = MARGIN_POINTS,
                alpha: float = ALPHA, min_queries: int = MIN_QUERIES) -> GateResult:
    """Judge a candidate's per-query hits against the reference's on the same queries."""
    ref = np.asarray(reference_hits, dtype=bool)
    cand = np.asarray(candidate_hits, dtype=bool)
    if ref.shape != cand.shape or ref.ndim != 1 or not len(ref):
        raise ValueError(f"paired gate needs two equal non-empty 1-D hit vectors, got {ref.shape} and {cand.shape}")
    n = len(ref)
    losses = int(np.sum(ref & ~cand))
    gains = int(np.sum(~ref & cand))
    p = drop_p_value(losses, gains, n, margin_points / 100.0)
    return GateResult(n, int(ref.sum()), int(cand.sum()), losses, gains, (losses - gains) / n * 100.0,
                      margin_points, alpha, p, p < alpha, n < min_queries)


def rule_record() -> dict:
    """The rule as the manifest's ``parity.recall_gate`` records it."""
    return {"rule": "paired: one-sided exact binomial test on the discordant queries, H0 drop <= margin "
                    "(docs/export.md, Recall@1 gate)",
            "margin_points": MARGIN_POINTS, "alpha": ALPHA, "min_queries": MIN_QUERIES}


def rejection_probability(queries: int, discordance: float, true_drop: float, margin_points: float = MARGIN_POINTS,
                          alpha: float = ALPHA) -> float:
    """Exact P(gate fails) for ``queries`` queries, a discordance rate and a true drop (fractions).

    Sums the multinomial probability of every (losses, gains) outcome the gate rejects: its
    false-alarm rate at ``true_drop = 0``, its level at ``true_drop = margin``, its power above
    (the table in docs/export.md).
    """
    from scipy.special import gammaln

    p_loss, p_gain = (discordance + true_drop) / 2, (discordance - true_drop) / 2
    if p_gain < 0 or p_loss > 1:
        raise ValueError("need 0 <= true_drop <= discordance <= 1")
    top = int(min(queries, queries * discordance * 3 + 40))
    total = 0.0
    for b in range(top + 1):
        for c in range(top + 1 - b):
            if (c and p_gain == 0) or drop_p_value(b, c, queries, margin_points / 100.0) >= alpha:
                continue
            rest = queries - b - c
            log_p = (gammaln(queries + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(rest + 1)
                     + (b * np.log(p_loss) if b else 0.0) + (c * np.log(p_gain) if c else 0.0)
                     + (rest * np.log1p(-discordance) if rest else 0.0))
            total += float(np.exp(log_p))
    return total
