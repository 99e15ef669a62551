"""The growth schedule of a progressive GAN (Karras et al. 2018), kept as a callback.

The networks (`course_lib.nn.progressive`) hold their growth state, `level` and `alpha`; this callback
sets it before every step from the number of steps done, so the trainer never knows the run grows:

    steps [0, stable)                            level 0 (7x7),   alpha 1
    steps [stable, stable + fade)                level 1 (14x14), alpha 0 -> 1 (fade-in), then
    steps [stable + fade, 2 stable + fade)       level 1, alpha 1
    steps [2 stable + fade, 2 (stable + fade))   level 2 (28x28), alpha 0 -> 1, then level 2 to the end.

alpha = (step - start of the fade) / fade, so the first step of a fade trains exactly the old network
(alpha 0). Config: `callbacks: [{name: progressive, stable_steps: 600, fade_steps: 600}]`. The schedule
and the current state are checkpointed; the EMA generator (if any) is grown alongside.
"""

from __future__ import annotations

from course_lib.core.errors import CheckpointError, ConfigError
from course_lib.training.callbacks.base import Callback, register_callback

LEVELS = 3  # 7, 14, 28


def growth_at(step: int, stable_steps: int, fade_steps: int) -> tuple[int, float]:
    """(level, alpha) for the step with index `step` (0-based) of the schedule above."""
    level, alpha = 0, 1.0
    for k in range(1, LEVELS):
        start = k * stable_steps + (k - 1) * fade_steps
        if step >= start:
            level, alpha = k, min(1.0, (step - start) / fade_steps) if fade_steps else 1.0
    return level, alpha


@register_callback("progressive")
class ProgressiveGrowth(Callback):
    """Sets `level` and `alpha` of a progressive generator and discriminator before every step."""

    def __init__(self, stable_steps: int = 500, fade_steps: int = 500):
        for name, value in (("stable_steps", stable_steps), ("fade_steps", fade_steps)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"progressive: {name} must be an integer >= 0, got {value!r}")
        if stable_steps == 0 and fade_steps == 0:
            raise ConfigError("progressive: stable_steps and fade_steps cannot both be 0")
        self.stable_steps, self.fade_steps = stable_steps, fade_steps
        self.level, self.alpha = 0, 1.0
        self.modules: list = []

    def schedule_length(self) -> int:
        """Steps until the networks are fully grown (level 2, alpha 1)."""
        return (LEVELS - 1) * (self.stable_steps + self.fade_steps)

    def setup(self, ctx) -> None:
        growing = [m for m in (ctx.generator, ctx.discriminator) if hasattr(m, "set_growth")]
        if len(growing) != 2:
            raise ConfigError(
                "the progressive callback needs a growing generator and discriminator: "
                "use arch 'progressive' (configs/progressive_mnist.yaml)"
            )
        self.modules = growing
        self._apply(ctx, 0)  # a fresh run; a resumed one is set again in on_train_start

    def _apply(self, ctx, step: int) -> None:
        self.level, self.alpha = growth_at(step, self.stable_steps, self.fade_steps)
        evaluation = ctx.generator_for_eval()
        for module in (*self.modules, *([evaluation] if evaluation not in self.modules else [])):
            module.set_growth(self.level, self.alpha)

    def on_train_start(self, ctx) -> None:
        self._apply(ctx, ctx.step)

    def on_step_end(self, ctx, metrics) -> None:
        ctx.log({"resolution": 7 * 2**self.level, "alpha": self.alpha})  # of the step just done
        self._apply(ctx, ctx.step)  # for the next step

    def state_dict(self) -> dict:
        return {
            "stable_steps": self.stable_steps,
            "fade_steps": self.fade_steps,
            "level": self.level,
            "alpha": self.alpha,
        }

    def load_state_dict(self, state: dict) -> None:
        saved = (state.get("stable_steps"), state.get("fade_steps"))
        if saved != (self.stable_steps, self.fade_steps):
            raise CheckpointError(
                f"the checkpoint's growth schedule (stable, fade) = {saved} differs from this run's "
                f"{(self.stable_steps, self.fade_steps)}"
            )
        self.level, self.alpha = int(state["level"]), float(state["alpha"])

    def summary(self) -> dict:
        return {
            "callback": "progressive",
            "stable_steps": self.stable_steps,
            "fade_steps": self.fade_steps,
            "level": self.level,
            "alpha": self.alpha,
            "resolution": 7 * 2**self.level,
        }
