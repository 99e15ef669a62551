"""Metric results that carry their own label: which metric, which feature extractor, how many images.

A bare number like "FID 12.3" means nothing without knowing the network behind it: FIDs computed
with the MNIST classifier are on a different scale from Inception FIDs. Results print with that label.
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
        sizes = f", n={' vs '.join(str(k) for k in self.n)}" if self.n else ""
        label = f" [{self.extractor}{sizes}]" if self.extractor else (f" [n={self.n}]" if self.n else "")
        extra = "".join(f", {k}={v:.4g}" if isinstance(v, float) else "" for k, v in self.details.items())
        return f"{self.metric} = {self.value:.4f}{spread}{extra}{label}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["n"] = list(self.n)
        return out
