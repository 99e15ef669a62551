"""Every metric a generator evaluation reports, described once: key, label, better direction, format.

Reports, plots and tables loop over `METRICS` instead of spelling the metrics out, and the
diversity controller takes each measure's sign (+1 when higher is better) from here:

    key            label              better   what it is
    is             IS                 higher   Inception Score over splits (MNIST-IS with the digit classifier)
    fid            FID                lower    Fréchet distance of Gaussian fits to the features
    kid            KID (x1000)        lower    unbiased polynomial-kernel MMD^2, averaged over subsets
    precision      precision          higher   share of samples inside the real data's k-NN manifold
    recall         recall             higher   share of real images inside the samples' manifold
    diversity      diversity          higher   mean pairwise feature distance, samples / real images
    lipschitz      Lipschitz (L2)     lower    max ||G(z1) - G(z2)|| / ||z1 - z2|| over latent pairs
    lipschitz_l1   Lipschitz (L1)     lower    the same in the L1 norm
    ppl            PPL (Z)            lower    perceptual path length in Z, slerp (`ppl`; the extractor's features)
    ppl_w          PPL (W)            lower    the same in a style generator's W, lerp (None for other generators)

`is_std` is not a metric of its own: it is the spread of `is` over its splits, reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    better: str  # "higher" or "lower"
    digits: int  # decimals shown in tables
    scale: float = 1.0  # shown as value * scale (KID in units of 1e-3)
    needs: str = "features"  # "features", "logits" (class scores), "reference" (features of real images), "noise",
    # "generator" (the generator itself: latent paths)

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: sign * value is always "higher is better"."""
        return 1.0 if self.better == "higher" else -1.0

    def format(self, value: float | None, spread: float | None = None) -> str:
        """The value as tables show it ("n/a" when missing), with "± spread" when given."""
        if value is None:
            return "n/a"
        text = f"{value * self.scale:.{self.digits}f}"
        return text + (f" ± {spread * self.scale:.{self.digits}f}" if spread is not None else "")

    def beats(self, a: float | None, b: float | None) -> bool | None:
        """Whether value a is better than value b (None when either is missing)."""
        if a is None or b is None:
            return None
        return a > b if self.better == "higher" else a < b


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("is", "IS", "higher", 2, needs="logits"),
        Metric("fid", "FID", "lower", 2, needs="reference"),
        Metric("kid", "KID (x1000)", "lower", 2, scale=1000.0, needs="reference"),
        Metric("precision", "precision", "higher", 3, needs="reference"),
        Metric("recall", "recall", "higher", 3, needs="reference"),
        Metric("diversity", "diversity", "higher", 3, needs="reference"),
        Metric("lipschitz", "Lipschitz (L2)", "lower", 3, needs="noise"),
        Metric("lipschitz_l1", "Lipschitz (L1)", "lower", 1, needs="noise"),
        Metric("ppl", "PPL (Z)", "lower", 1, needs="generator"),
        Metric("ppl_w", "PPL (W)", "lower", 1, needs="generator"),
    )
}


def metric(key: str) -> Metric:
    from .errors import MetricInputError

    if key not in METRICS:
        raise MetricInputError(f"unknown metric {key!r}; known: {', '.join(METRICS)}")
    return METRICS[key]
