"""A user's own loss term, callback and metric, in one file outside course_lib (issue 27, point 4).

Used by tests/test_user_extensions.py by the names `user_extensions:OrthogonalWeights`,
`user_extensions:StepCounter` and `user_extensions:MeanBrightness`, exactly as a student's own module would be
named in a config or on the command line; `mean-abs-logit` shows the other way, a registration call.
"""

import torch

from course_lib.metrics import METRICS, Metric
from course_lib.training.callbacks import Callback
from course_lib.training.terms import TERMS, LossTerm


class OrthogonalWeights(LossTerm):
    """weight * ||W W^T - I||_F^2 over G's first layer's weight rows (Brock et al.'s orthogonal regularisation)."""

    def __init__(self, weight: float = 1e-4):
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        self.weight = weight
        self.calls = 0

    def generator_loss(self, batch, ctx):
        w = next(p for p in ctx.generator.parameters() if p.ndim >= 2).flatten(1)
        gram = w @ w.t()
        value = self.weight * (gram - torch.eye(len(gram), device=gram.device)).pow(2).sum()
        self.calls += 1
        batch.metrics["orthogonal"] = value.detach()  # a tensor: the trainer reads it only when it logs
        return value

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


class StepCounter(Callback):
    """Counts the steps it has seen; its count is checkpointed and comes back on resume."""

    def __init__(self, every: int = 1):
        self.every, self.seen = every, 0

    def on_step_end(self, ctx, metrics):
        if ctx.step % self.every == 0:
            self.seen += 1

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]

    def summary(self):
        return {"seen": self.seen}


class MeanBrightness(Metric):
    """The mean pixel value of the generated images, in [-1, 1]."""

    label, better, digits, needs = "brightness", "higher", 3, "samples"

    @classmethod
    def compute(cls, scoring):
        if scoring.samples is None:
            return {cls.name: None}
        return {cls.name: float(scoring.samples.mean())}


@METRICS.register("mean-abs-logit")
class MeanAbsLogit(Metric):
    """Registered by a call: the mean |logit| of the extractor's classifier head."""

    label, better, digits, needs = "mean |logit|", "higher", 3, "logits"

    @classmethod
    def compute(cls, scoring):
        return {cls.name: float(scoring.features.logits.abs().mean())}


@TERMS.register("user-zero")
class ZeroTerm(LossTerm):
    """Registered by a call: contributes nothing (checks that a registered user term is found by name)."""
