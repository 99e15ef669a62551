"""An exponential moving average of the generator's weights, kept as a callback.

Yazici et al. 2019 ("The Unusual Effectiveness of Averaging in GAN Training") and Karras et al.
evaluate and sample from an EMA of the generator. After every generator step,

    theta_ema <- d theta_ema + (1 - d) theta,   d_t = min(d, (1 + t) / (10 + t))

the warm-up keeping short runs from being dominated by the initial weights. Buffers (batch-norm
running statistics) are copied, not averaged. The trainer asks its callbacks for an evaluation
generator (`evaluation_generator`), so samples, evaluations, FID tracking and `load_generator`
all use the average. Turned on by `ema: 0.999` in a config (`preset: ema`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from course_lib.training.callbacks.base import Callback, register_callback


class ExponentialMovingAverage:
    """An EMA copy of a module (see the module docstring)."""

    def __init__(self, module: nn.Module, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = self.current_decay()
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1 - d)  # ema + (1 - d)(p - ema) = d ema + (1 - d) p
        for ema_b, b in zip(self.module.buffers(), module.buffers()):
            ema_b.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


@register_callback("ema")
class GeneratorEMA(Callback):
    """Keeps `ExponentialMovingAverage(ctx.generator, decay)` up to date after every step."""

    def __init__(self, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.average: ExponentialMovingAverage | None = None

    def setup(self, ctx) -> None:
        self.average = ExponentialMovingAverage(ctx.generator, self.decay)

    def on_step_end(self, ctx, metrics) -> None:
        self.average.update(ctx.generator)

    def evaluation_generator(self) -> nn.Module:
        return self.average.module

    def state_dict(self) -> dict:
        return self.average.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state)

    def summary(self) -> dict:
        return {"callback": "ema", "decay": self.decay, "updates": self.average.updates}
