"""Metric results that carry their own label: which metric, which feature extractor, how many images,
and, on request, a confidence interval and the protocol that produced them.

A bare number like "FID 12.3" means nothing without knowing the network behind it: FIDs computed
with the MNIST classifier are on a different scale from Inception FIDs. Results print with that label,
and with an interval as `FID = 12.3000 ± 0.4100 (95% CI, n=2000)` (the half-width of the interval; a
bootstrap interval need not be symmetric, `ci_low`/`ci_high` hold its ends).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class MetricResult:
    """One metric value (with a spread where the metric has one), and what produced it.

    Behaves as a number where one is expected: float(result), f"{result:.2f}", result < 10.
    """

    metric: str
    value: float
    std: float | None = None
    extractor: str = ""
    comparable_with_inception: bool = True
    n: tuple = ()
    details: dict = field(default_factory=dict)
    ci_low: float | None = None  # a confidence interval [ci_low, ci_high] at level ci_level (see `uncertainty`)
    ci_high: float | None = None
    ci_level: float | None = None
    ci_method: str = ""  # how it was found, e.g. "bootstrap over 2000 samples, B=200" or "t over 3 seeds"
    ci_n: int | None = None  # what it was resampled over: generated samples, or seeds
    protocol: str = ""  # for FID-type numbers: resize mode, weights, sample count, reference set

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (what `±` prints), or None without an interval."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2

    def interval_text(self, digits: int = 4) -> str:
        """`± half-width (95% CI, n=...)`, or "" without an interval."""
        if self.half_width is None:
            return ""
        level = f"{100 * self.ci_level:g}% CI" if self.ci_level is not None else "CI"
        count = f", n={self.ci_n}" if self.ci_n is not None else ""
        return f" ± {self.half_width:.{digits}f} ({level}{count})"

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if spec else str(self)

    def __lt__(self, other) -> bool:
        return self.value < float(other)

    def __gt__(self, other) -> bool:
        return self.value > float(other)

    def __le__(self, other) -> bool:
        return self.value <= float(other)

    def __ge__(self, other) -> bool:
        return self.value >= float(other)

    def __str__(self) -> str:
        spread = f" ± {self.std:.4g}" if self.std is not None else ""
        if self.half_width is not None:  # the interval takes the ± place; a spread over splits is named
            spread = self.interval_text() + (f", std={self.std:.4g}" if self.std is not None else "")
        sizes = f", n={' vs '.join(str(k) for k in self.n)}" if self.n else ""
        label = f" [{self.extractor}{sizes}]" if self.extractor else (f" [n={self.n}]" if self.n else "")
        extra = "".join(f", {k}={v:.4g}" if isinstance(v, float) else "" for k, v in self.details.items())
        return f"{self.metric} = {self.value:.4f}{spread}{extra}{label}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["n"] = list(self.n)
        return out
