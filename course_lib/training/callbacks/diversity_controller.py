"""The diversity controller: scoring the generator during training and steering it with the score.

The idea (seed document 000): every `interval` steps, score the current generator on a fixed batch
of evaluation noise, compare it with the previous checkpoint, and set the generator's parameters
by linear interpolation between the two,

    theta <- theta_prev + r (theta_cur - theta_prev),     r in [0, 1] chosen to maximise the score,

so that a stretch of training that lowered the score is partly (or wholly) undone. The seed's
table compares three methods; here they are three `mode`s of one trainer callback:

- "observe" (Vanilla): training is untouched; the scores are only logged.
- "select" (IS-guided): training is untouched; the generator with the best score seen at any
  decision is kept and restored at the end of training. This is our reading of the seed's "every
  interval, measure IS on the current generator; stop training when IS and the max norm are at
  their best" -- early stopping by the score, done as "train the full budget, restore the best",
  which gives the same generator without needing a way to stop the ctx.
- "interpolate" (IS + interpolation): at each decision after the first, theta_prev is the
  generator as the previous decision left it, theta_cur the generator now; r is chosen by a search
  over [0, 1] (a grid, or golden-section search assuming the score is unimodal in r) and training
  continues from theta(r). The seed gives no rule for r beyond "chosen by the score", so we take
  the maximiser; ties go to the larger r (the least intervention).

Measures (each "higher is better" after its sign; a `score` mixes them with positive weights,
score = sum_k w_k s_k m_k, s_k = +1 for IS and diversity, -1 for FID and Lipschitz: the better
direction of each is described once, in course_lib.metrics.table). They are computed by the shared
`metrics.GeneratorEvaluator` on the controller's fixed noise batch:

    is            Inception Score exp(E_x KL(p(y|x) || p(y))) of the evaluation batch, one split
                  (the MNIST classifier's for digits: "MNIST-IS")
    diversity     mean pairwise feature distance of the generated batch / the same on as many
                  real images (course_lib.metrics.diversity); 1 = as varied as the data
    fid           Frechet distance between Gaussian fits of generated and real features (same
                  batch sizes; biased at this size, but fine for comparing r's). Guide with it and
                  FID stops being an independent judge -- the experiments keep it as the judge.
    lipschitz     max over pairs (z_i, z_{i+n/2}) of the evaluation batch of
                  ||G(z1) - G(z2)||_2 / ||z1 - z2||_2 (the seed's "max norm"; lipschitz_l1: p = 1),
                  see course_lib.metrics.lipschitz. Lower counts as better, following the seed.

"The end of training" is the end of the `train()` call that reaches the configured steps (or goes
beyond them): select mode restores the best generator there and the final measures are taken. A
`train()` call that stops earlier is a pause (experiments train to each evaluation step in turn),
after which the run goes on as if it had not stopped.

Guarantees: scoring runs under torch.no_grad with the generator in eval mode, never draws from the
trainer's noise stream, and saves/restores the global RNG states around each decision, so a
decision that keeps r = 1 leaves training bit-for-bit as it would have been without the
controller. Interpolation covers parameters and floating-point buffers (batch-norm running
statistics); integer buffers (num_batches_tracked) take the current value. torch.lerp is exact at
both ends (r = 0 gives theta_prev, r = 1 theta_cur, bit for bit). After theta is set the Adam state
(moments, step counts) is left as it is: the moments describe recent gradients, which remain a
reasonable preconditioner near theta(r), and resetting them would add a second intervention whose
effect could not be told apart from the interpolation's. The controller acts on
`trainer.generator` (with EMA enabled, the averaged copy keeps averaging it).

Optionally the same signal turns a scalar knob: when the chosen score falls below the previous
decision's, the knob moves by `knob_factor` in the direction that usually helps a discriminator
that is winning (lr_d down, instance noise up: the `factor` of the run's instance-noise loss
term), and moves back when the score rises, within `knob_range` (multipliers of the configured value).

The controller does not time itself: the trainer keeps every callback's seconds
(`trainer.callback_seconds`, `ctx.seconds_of(callback)`), which experiment reports show and `budget_seconds` reads.

In a config: `callbacks: [{name: diversity_controller, interval: 100, score: is}]`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.core.errors import ConfigError, CourseLibError
from course_lib.core.io import write_text_atomic
from course_lib.metrics.evaluator import GeneratorEvaluator, preserved_rng
from course_lib.metrics.features import extractor_names
from course_lib.metrics.table import METRICS
from course_lib.training.callbacks.base import Callback, register_callback

# The measures a score may use, with the sign that makes each "higher is better" (from the metric table).
MEASURES = {key: METRICS[key].sign for key in ("is", "diversity", "fid", "lipschitz", "lipschitz_l1")}
MODES = ("interpolate", "select", "observe")
SEARCHES = ("grid", "golden")
KNOBS = {"lr_d": -1.0, "instance_noise": 1.0}  # direction to move the knob when the score falls
LOG_NAME = "controller.jsonl"


# --------------------------------------------------------------------------------- interpolation
def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of a module's parameters and buffers (its state_dict)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def interpolate_states(
    prev: dict[str, torch.Tensor], cur: dict[str, torch.Tensor], r: float
) -> dict[str, torch.Tensor]:
    """prev + r (cur - prev) for floating-point entries (torch.lerp: exact at r = 0 and r = 1);
    integer entries (e.g. batch norm's num_batches_tracked) take the current value."""
    if set(prev) != set(cur):
        raise CourseLibError(f"cannot interpolate states with different entries: {sorted(set(prev) ^ set(cur))}")
    if not 0.0 <= r <= 1.0:
        raise CourseLibError(f"the interpolation weight r must be in [0, 1], got {r}")
    out = {}
    for key, c in cur.items():
        p = prev[key].to(c.device)
        out[key] = torch.lerp(p, c, float(r)) if c.is_floating_point() else c.clone()
    return out


def load_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a state into the module's existing tensors (the optimiser keeps pointing at them)."""
    module.load_state_dict(state)


# ------------------------------------------------------------------------------------ search
def grid_search(f: Callable[[float], float], grid) -> tuple[float, dict[float, float]]:
    """Evaluate f on every r of the grid; the argmax (ties: the larger r) and every value."""
    seen = {float(r): f(float(r)) for r in sorted(set(grid))}
    return _argmax(seen), seen


def golden_section_search(f: Callable[[float], float], interior_evals: int = 6) -> tuple[float, dict[float, float]]:
    """Golden-section search for the maximum of f on [0, 1] (Kiefer 1953), plus both endpoints.

    Each interior evaluation shrinks the bracket by 1/phi = 0.618; for a unimodal f the bracket
    after k interior evaluations has width 0.618^(k-1). The best r seen is returned (ties: the
    larger), so a non-unimodal f still gets at least the best of the evaluated points.
    """
    if interior_evals < 2:
        raise ConfigError(f"golden-section search needs at least 2 interior evaluations, got {interior_evals}")
    inv_phi = (math.sqrt(5) - 1) / 2
    seen: dict[float, float] = {}

    def value(r: float) -> float:
        r = round(r, 12)
        if r not in seen:
            seen[r] = f(r)
        return seen[r]

    value(0.0)
    value(1.0)
    a, b = 0.0, 1.0
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = value(c), value(d)
    for _ in range(interior_evals - 2):
        if fc >= fd:  # the maximum lies in [a, d]
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = value(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = value(d)
    return _argmax(seen), seen


def _argmax(seen: dict[float, float]) -> float:
    return max(seen, key=lambda r: (_finite_or_minus_inf(seen[r]), r))


def _finite_or_minus_inf(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


# ----------------------------------------------------------------------------- the callback
@register_callback("diversity_controller")
class DiversityController(Callback):
    """A trainer callback: every `interval` steps, score the generator and act on it (see the module docstring).

    Arguments (all YAML/JSON-friendly, so configs can name them):
        interval      decide every `interval` generator steps
        score         a measure name ("is", "diversity", "fid", "lipschitz", "lipschitz_l1"), a mapping
                      {name: weight} (weights >= 0, signs come from the measures), or (Python only)
                      a callable (generator, noise) -> float
        mode          "interpolate" (IS + interpolation), "select" (IS-guided), "observe" (vanilla, logs only)
        search        "grid" over `r_grid`, or "golden" with `golden_evals` interior evaluations
        n_eval        size of the fixed evaluation noise batch (drawn once from `eval_seed`)
        extractor     "mnist", "inception", "pixels" or "auto" (metrics.features.resolve_extractor, preferring the
                      MNIST classifier for 1-channel data: it is scored many times per run)
        measures      extra measures to log at every evaluation (default: the free Lipschitz ones)
        final_measures measures of the final generator, reported in summary()
        budget_evals / budget_seconds   stop deciding once this many score evaluations / seconds of this
                      callback (trainer.callback_seconds) are spent (a decision that has started is finished)
        knob, knob_factor, knob_range   the optional scalar knob ("lr_d" or "instance_noise")
    """

    def __init__(
        self,
        interval: int = 100,
        score: Any = "is",
        mode: str = "interpolate",
        search: str = "grid",
        r_grid=(0.0, 0.25, 0.5, 0.75, 1.0),
        golden_evals: int = 6,
        n_eval: int = 500,
        eval_seed: int = 1234,
        extractor: str = "auto",
        measures=None,
        final_measures=("is", "diversity", "lipschitz", "lipschitz_l1"),
        budget_evals: int | None = None,
        budget_seconds: float | None = None,
        knob: str | None = None,
        knob_factor: float = 1.5,
        knob_range=(0.1, 10.0),
        eval_batch_size: int = 250,
    ):
        self.interval = _positive_int("interval", interval)
        if mode not in MODES:
            raise ConfigError(f"controller mode must be one of {', '.join(MODES)}, got {mode!r}")
        if search not in SEARCHES:
            raise ConfigError(f"controller search must be one of {', '.join(SEARCHES)}, got {search!r}")
        self.mode, self.search = mode, search
        self.score_fn: Callable | None = score if callable(score) else None
        self.weights = {} if self.score_fn else _weights(score)
        self.r_grid = _r_grid(r_grid)
        self.golden_evals = _positive_int("golden_evals", golden_evals)
        if search == "golden" and golden_evals < 2:
            raise ConfigError(f"golden_evals must be at least 2, got {golden_evals}")
        self.n_eval = _positive_int("n_eval", n_eval)
        if self.n_eval < 4:
            raise ConfigError(f"n_eval must be at least 4 (pairs for diversity and Lipschitz), got {n_eval}")
        self.eval_seed = int(eval_seed)
        if extractor not in extractor_names():
            raise ConfigError(f"extractor must be one of {', '.join(extractor_names())}, got {extractor!r}")
        self.extractor = extractor
        default_extra = () if self.score_fn else ("lipschitz", "lipschitz_l1")
        self.measures = _measure_names("measures", default_extra if measures is None else measures)
        self.final_measures = _measure_names("final_measures", final_measures or ())
        self.budget_evals = None if budget_evals is None else _positive_int("budget_evals", budget_evals)
        if budget_seconds is not None and not (isinstance(budget_seconds, (int, float)) and budget_seconds > 0):
            raise ConfigError(f"budget_seconds must be a positive number or null, got {budget_seconds!r}")
        self.budget_seconds = budget_seconds
        if knob is not None and knob not in KNOBS:
            raise ConfigError(f"knob must be one of {', '.join(KNOBS)} or null, got {knob!r}")
        if not (isinstance(knob_factor, (int, float)) and knob_factor > 1):
            raise ConfigError(f"knob_factor must be a number above 1, got {knob_factor!r}")
        lo, hi = (float(v) for v in knob_range)
        if not 0 < lo <= 1 <= hi:
            raise ConfigError(f"knob_range must be [low, high] with 0 < low <= 1 <= high, got {list(knob_range)}")
        self.knob, self.knob_factor, self.knob_range = knob, float(knob_factor), (lo, hi)
        self.eval_batch_size = _positive_int("eval_batch_size", eval_batch_size)

        # state (checkpointed)
        self.log: list[dict] = []
        self.prev: dict[str, torch.Tensor] | None = None  # interpolate: theta as the last decision left it
        self.best: dict[str, torch.Tensor] | None = None  # select: the best-scoring generator so far
        self.best_step: int | None = None
        self.best_score = -math.inf
        self.last_score: float | None = None
        self.knob_multiplier = 1.0
        self.evaluations = 0
        self.exhausted = False
        self.finished = False
        self.final: dict[str, float] = {}
        self._evaluators: dict[tuple, GeneratorEvaluator] = {}
        self._noise: torch.Tensor | None = None
        self._knob_applied = False

    # ----------------------------------------------------------------------- the lifecycle
    def on_train_start(self, ctx) -> None:
        if self.knob is not None:  # a knob that cannot work is an error before the first step, not after
            self._apply_knob(ctx)

    def on_step_end(self, ctx, metrics=None) -> None:
        if self.knob is not None and not self._knob_applied:
            self._apply_knob(ctx)
        if ctx.step % self.interval == 0:
            self._decide_if_allowed(ctx)

    def on_train_end(self, ctx) -> None:
        """The end of the run (the trainer calls it once the run reaches its length, never at a pause)."""
        if self.finished:
            return
        decided_now = any(e["step"] == ctx.step for e in self.decisions())
        if self.mode == "select" and not decided_now:  # the last generator competes too
            self._decide_if_allowed(ctx)
        self.finish(ctx)

    def _decide_if_allowed(self, ctx) -> None:
        if self.finished:
            return
        if self._budget_left(ctx):
            self.decide(ctx)
        elif not self.exhausted:
            self.exhausted = True
            self._record(
                ctx,
                {
                    "step": ctx.step,
                    "event": "budget exhausted",
                    "evaluations": self.evaluations,
                    "seconds": round(self._seconds_spent(ctx), 4),
                },
            )

    def _seconds_spent(self, ctx) -> float:
        """This callback's time so far, as the trainer measures it (0 outside a trainer)."""
        if not any(c is self for c in getattr(ctx, "callbacks", [])):
            return 0.0
        return ctx.seconds_of(self)

    def _budget_left(self, ctx) -> bool:
        if self.exhausted:
            return False
        if self.budget_evals is not None and self.evaluations >= self.budget_evals:
            return False
        return self.budget_seconds is None or self._seconds_spent(ctx) < self.budget_seconds

    # ------------------------------------------------------------------------ scoring
    def _eval_noise(self, ctx) -> torch.Tensor:
        """The fixed evaluation latents (n_eval, latent_dim), drawn once from eval_seed (CPU)."""
        if self._noise is None:
            latent_dim = getattr(ctx, "latent_dim", None) or ctx.generator.latent_dim
            self._noise = torch.randn(self.n_eval, latent_dim, generator=torch.Generator().manual_seed(self.eval_seed))
        return self._noise

    def _evaluator(self, ctx, names) -> GeneratorEvaluator:
        """The shared generator evaluator for these measures, on the fixed noise; real images (n_eval of
        the training set, drawn once from eval_seed + 1) when a measure compares with them."""
        key = tuple(names)
        if key not in self._evaluators:
            real = None
            if any(METRICS[n].needs == "reference" for n in names):
                data = ctx.data.images
                pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.eval_seed + 1))
                real = data[pick[: self.n_eval]]
            device = torch.device(getattr(ctx, "device", None) or next(ctx.generator.parameters()).device)
            channels = getattr(ctx, "channels", None) or getattr(ctx.generator, "channels", 1)
            self._evaluators[key] = GeneratorEvaluator(
                names,
                real,
                extractor=self.extractor,
                noise=self._eval_noise(ctx),
                sample_batch_size=self.eval_batch_size,
                device=device,
                channels=channels,
                prefer_digits=True,
                is_splits=1,
            )
        return self._evaluators[key]

    def _measure(self, ctx, names) -> dict[str, float]:
        """The named measures of ctx.generator as it is now (conditional generators: labels 0..K-1, 0, ...)."""
        return self._evaluator(ctx, names)(ctx.generator)

    def _score_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.weights, *self.measures]))

    def evaluate(self, ctx) -> tuple[float, dict[str, float]]:
        """(score, measures) of ctx.generator as it is now."""
        self.evaluations += 1
        if self.score_fn is not None:
            device = torch.device(getattr(ctx, "device", None) or next(ctx.generator.parameters()).device)
            score = float(self.score_fn(ctx.generator, self._eval_noise(ctx).to(device)))
            measures = self._measure(ctx, self.measures) if self.measures else {}
            return score, measures
        measures = self._measure(ctx, self._score_names())
        score = sum(w * MEASURES[name] * measures[name] for name, w in self.weights.items())
        return (float(score) if math.isfinite(score) else -math.inf), measures

    # ------------------------------------------------------------------------ deciding
    def decide(self, ctx) -> dict:
        """One decision at ctx.step (see the module docstring); returns its log entry."""
        G = ctx.generator
        with preserved_rng(), torch.no_grad():
            current = snapshot(G)
            evaluations = []

            def at(r: float, prev=self.prev) -> float:
                load_state(G, interpolate_states(prev, current, r))
                score, measures = self.evaluate(ctx)
                evaluations.append({"r": r, "score": _json_float(score), "measures": _json_floats(measures)})
                return score

            if self.mode == "interpolate" and self.prev is not None:
                if self.search == "grid":
                    chosen, seen = grid_search(at, self.r_grid)
                else:
                    chosen, seen = golden_section_search(at, self.golden_evals)
                load_state(G, interpolate_states(self.prev, current, chosen))
                chosen_score = seen[chosen]
            else:  # observe, select, and interpolate's first decision: score the generator as it is
                chosen, chosen_score = 1.0, at(1.0, prev=current)
            if self.mode == "interpolate":
                self.prev = snapshot(G)
            elif self.mode == "select" and chosen_score > self.best_score:
                self.best, self.best_step, self.best_score = current, ctx.step, chosen_score
        entry = {
            "step": ctx.step,
            "mode": self.mode,
            "evaluations": evaluations,
            "chosen_r": chosen,
            "score": _json_float(chosen_score),
        }
        if self.mode == "select":
            entry["best_step"] = self.best_step
        if self.knob is not None:
            entry[self.knob + "_multiplier"] = self._turn_knob(ctx, chosen_score)
        self.last_score = chosen_score
        self._record(ctx, entry)
        ctx.log({"controller_r": chosen, "controller_score": _json_float(chosen_score) or float("nan")})
        return entry

    def finish(self, ctx) -> None:
        """End of training: select mode restores the best generator; the final measures are taken."""
        self.finished = True
        if self.mode == "select" and self.best is not None and self.best_step != ctx.step:
            with torch.no_grad():
                load_state(ctx.generator, self.best)
            self._record(
                ctx,
                {
                    "step": ctx.step,
                    "event": "restored best",
                    "best_step": self.best_step,
                    "score": _json_float(self.best_score),
                },
            )
        if self.final_measures:
            with preserved_rng(), torch.no_grad():
                self.final = self._measure(ctx, self.final_measures)
            self._record(ctx, {"step": ctx.step, "event": "final measures", "measures": _json_floats(self.final)})

    # --------------------------------------------------------------------------- the knob
    def _apply_knob(self, ctx) -> None:
        if self.knob == "lr_d":
            for group in ctx.opt_d.param_groups:
                group["lr"] = ctx.config.optim.lr_d * self.knob_multiplier
        else:
            term = ctx.term("instance-noise")
            if term is None:
                raise ConfigError(
                    "knob 'instance_noise' needs a trainer with instance noise switched on "
                    "(loss.terms: [{name: instance-noise, std: 0.1}] in the training config), or choose knob: lr_d"
                )
            term.factor = self.knob_multiplier
        self._knob_applied = True

    def _turn_knob(self, ctx, score: float) -> float:
        if self.last_score is not None and math.isfinite(score) and score != self.last_score:
            direction = KNOBS[self.knob] * (1.0 if score < self.last_score else -1.0)
            lo, hi = self.knob_range
            self.knob_multiplier = min(hi, max(lo, self.knob_multiplier * self.knob_factor**direction))
        self._apply_knob(ctx)
        return self.knob_multiplier

    # ------------------------------------------------------------------------ bookkeeping
    def _record(self, ctx, entry: dict) -> None:
        self.log.append(entry)
        out_dir = getattr(ctx, "out_dir", None)
        # Under torchrun every rank decides alike (the evaluator's numbers are the same on all); rank 0 writes.
        if out_dir is not None and getattr(ctx, "rank", 0) == 0:
            write_text_atomic(Path(out_dir) / LOG_NAME, "".join(json.dumps(e) + "\n" for e in self.log))

    def decisions(self) -> list[dict]:
        """The decision entries of the log (without budget/restore/final events)."""
        return [e for e in self.log if "chosen_r" in e]

    def summary(self) -> dict:
        """JSON-able figures for reports: decisions, mean chosen r, evaluations, final measures
        (its time: trainer.callback_seconds)."""
        rs = [e["chosen_r"] for e in self.decisions()]
        out = {
            "callback": self.name,
            "mode": self.mode,
            "score": "callable" if self.score_fn else "+".join(f"{w:g}*{k}" for k, w in self.weights.items()),
            "decisions": len(rs),
            "mean_r": float(np.mean(rs)) if rs else None,
            "evaluations": self.evaluations,
            "budget_exhausted": self.exhausted,
        }
        if self.mode == "select":
            out["best_step"] = self.best_step
        if self.knob is not None:
            out[self.knob + "_multiplier"] = self.knob_multiplier
        out.update({f"final_{k}": _json_float(v) for k, v in self.final.items()})
        return out

    def state_dict(self) -> dict:
        cpu = lambda s: None if s is None else {k: v.cpu() for k, v in s.items()}
        return {
            "log": self.log,
            "prev": cpu(self.prev),
            "best": cpu(self.best),
            "best_step": self.best_step,
            "best_score": _json_float(self.best_score),
            "last_score": _json_float(self.last_score),
            "knob_multiplier": self.knob_multiplier,
            "evaluations": self.evaluations,
            "exhausted": self.exhausted,
            "finished": self.finished,
            "final": self.final,
        }

    def load_state_dict(self, state: dict) -> None:
        self.log = list(state["log"])
        self.prev, self.best, self.best_step = state["prev"], state["best"], state["best_step"]
        self.best_score = -math.inf if state["best_score"] is None else state["best_score"]
        self.last_score = state["last_score"]
        self.knob_multiplier, self.evaluations = state["knob_multiplier"], state["evaluations"]
        self.exhausted, self.finished, self.final = state["exhausted"], state["finished"], dict(state["final"])
        self._knob_applied = False


# --------------------------------------------------------------------------------- helpers
def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"controller setting {name} must be a positive integer, got {value!r}")
    return value


def _weights(score) -> dict[str, float]:
    if isinstance(score, str):
        score = {score: 1.0}
    if not isinstance(score, dict) or not score:
        raise ConfigError(f"controller score must be a measure name or a mapping {{name: weight}}, got {score!r}")
    _measure_names("score", list(score))
    for name, w in score.items():
        if not (isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 and math.isfinite(w)):
            raise ConfigError(
                f"score weight for {name!r} must be a non-negative number, got {w!r} "
                "(the measure's own sign says which way is better)"
            )
    return {k: float(v) for k, v in score.items()}


def _measure_names(what: str, names) -> tuple[str, ...]:
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ConfigError(
            f"unknown measure(s) in {what}: {', '.join(map(str, unknown))}; choose from {', '.join(MEASURES)}"
        )
    return tuple(dict.fromkeys(names))


def _r_grid(grid) -> tuple[float, ...]:
    try:
        values = sorted({float(r) for r in grid})
    except (TypeError, ValueError):
        raise ConfigError(f"r_grid must be a list of numbers in [0, 1], got {grid!r}") from None
    if not values or values[0] < 0 or values[-1] > 1:
        raise ConfigError(f"r_grid must be a non-empty list of numbers in [0, 1], got {list(grid)}")
    return tuple(values)


def _json_float(x):
    return None if x is None or not math.isfinite(x) else float(x)


def _json_floats(d: dict) -> dict:
    return {k: _json_float(v) for k, v in d.items()}
