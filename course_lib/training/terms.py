"""Loss terms: every objective and regulariser of a GAN run, as objects with one small interface, by name.

The training step (`course_lib.training.trainer`) knows no loss names and no tricks: it sums what
its terms contribute. A config lists the terms after the adversarial loss, in order, each by its
registered name with its own settings:

    loss: {name: wgan-gp, terms: [{name: gradient-penalty, weight: 10}, {name: r1, gamma: 10}]}

`TERMS` (a `course_lib.core.registry.Registry`) maps the names to classes; `build_terms` is a loop
over the list. A name `module.path:ClassName` takes a LossTerm subclass from the user's own module
(docs/architecture.md, "Add one in one file"). A term may

    discriminator_input(images, ctx)   change the images D sees (instance noise); default: unchanged
    discriminator_loss(batch, ctx)     add to D's loss: a tensor, a tuple of tensors (added in
                                       order), or None
    generator_loss(batch, ctx)         add to G's loss, likewise
    after_discriminator_step(ctx)      act after each optimiser step of D (weight clipping, averages)
    after_generator_step(ctx)          act after each optimiser step of G
    state_dict() / load_state_dict(state)  its own state, saved in every checkpoint

`ctx` is the run's `StepContext` (`course_lib.training.context`: the models, their training forward
passes, the optimisers, the config, the device, the noise stream, the step, the log), not the trainer.
`full_precision = True` computes the term outside autocast (second-order gradients). `batch` is a
`StepBatch` holding the real and fake images, the latents, the labels and D's outputs (dicts with
'logits', 'features' and, for ACGAN/InfoGAN, the auxiliary heads). A term reports values to the
training log by writing detached tensors to `batch.metrics` (read only when the log is written).

What a term or a loss needs of the rest of the config is declared next to it, as `requires`
(`Needs(setting, allowed, why)`, `NeedsTerm(name, why)`), and `check_requirements` checks all of it
in one place when a TrainConfig is built, with a one-line error naming the term and the setting.
The rule "a gradient penalty's critic has no batch norm" is `NO_BATCH_NORM`, stated once; it also
decides what model.d_norm 'auto' means (`resolved_d_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.core.registry import Registry
from course_lib.nn.losses import GANLoss, feature_matching, get_loss, gradient_penalty, r1_penalty
from course_lib.training import distributed

if TYPE_CHECKING:
    from course_lib.training.config import TrainConfig
    from course_lib.training.context import StepContext


@dataclass(frozen=True)
class Needs:
    """A setting a term or a loss requires: `setting` (a dotted config path) must be one of `allowed`.
    `auto`: what the setting's value 'auto' then resolves to (e.g. model.d_norm auto -> layer)."""

    setting: str
    allowed: tuple
    why: str
    auto: Any = None

    def problem(self, config: TrainConfig) -> str | None:
        value = config.get(self.setting)
        if value == "auto" and self.auto is not None or value in self.allowed:
            return None
        return f"needs {self.setting} {' or '.join(map(repr, self.allowed))} ({self.why}), got {value!r}"


@dataclass(frozen=True)
class NeedsTerm:
    """A loss term a loss or a setting requires in loss.terms."""

    term: str
    why: str

    def problem(self, config: TrainConfig) -> str | None:
        if config.term(self.term) is not None:
            return None
        return f"needs the term {self.term!r} in loss.terms ({self.why})"


# The one statement of the rule: a penalty on per-sample gradients of D needs a D without batch norm.
NO_BATCH_NORM = Needs(
    "model.d_norm",
    ("layer", "none"),
    "the penalty is per sample; batch norm mixes the samples of a batch",
    auto="layer",
)


@dataclass
class StepBatch:
    """What one discriminator step (and the generator step after the last one) computed."""

    real: torch.Tensor
    real_labels: torch.Tensor | None  # what conditions D on the real images: class labels (cGAN), sources (pix2pix)
    fake: torch.Tensor  # keeps its graph to G on the last discriminator step
    fake_labels: torch.Tensor | None
    z: torch.Tensor  # G's input: latents, or the images it translates (training/tasks.py)
    out_real: dict  # D on the real images
    out_fake: dict  # D on the detached fakes
    out_g: dict | None = None  # D on the fakes, with the graph to G (generator step only)
    metrics: dict = field(default_factory=dict)


class LossTerm:
    """Base class; see the module docstring. `name` (set by `@TERMS.register`) keys the term's state in
    checkpoints; `requires` lists what it needs of the config (`Needs`, `NeedsTerm`)."""

    name = "term"
    full_precision = False
    requires: tuple = ()

    def setup(self, ctx: StepContext) -> None:
        """Called once the models exist, before any state is loaded."""

    def discriminator_input(self, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return images

    def discriminator_loss(self, batch: StepBatch, ctx: StepContext):
        return None

    def generator_loss(self, batch: StepBatch, ctx: StepContext):
        return None

    def after_discriminator_step(self, ctx: StepContext) -> None:
        pass

    def after_generator_step(self, ctx: StepContext) -> None:
        pass

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass


TERMS = Registry("loss term", base=LossTerm)


def register_term(name: str):
    """Class decorator: make a LossTerm usable by name in loss.terms."""
    return TERMS.register(name)


class AdversarialLoss(LossTerm):
    """The GAN game itself (`course_lib.nn.losses`): D's loss on real and fake logits, G's on its fakes.

    Always the first term (from the config's loss section, not from loss.terms). real_target < 1 is
    one-sided label smoothing (Salimans et al. 2016). Also logs D(x) and D(G(z)): sigmoid means for
    probabilistic losses, raw score means otherwise. `generator_weight` scales G's side only (image
    translation weighs it against the L1 term; 0 trains D as an observer).
    """

    name = "adversarial"

    def __init__(self, loss: GANLoss, real_target: float = 1.0, generator_weight: float = 1.0):
        self.loss, self.real_target, self.generator_weight = loss, real_target, generator_weight

    def discriminator_loss(self, batch, ctx):
        squash = torch.sigmoid if self.loss.probabilistic else (lambda t: t)
        batch.metrics["d_real"] = squash(batch.out_real["logits"].detach().float()).mean()
        batch.metrics["d_fake"] = squash(batch.out_fake["logits"].detach().float()).mean()
        return self.loss.discriminator(batch.out_real["logits"], batch.out_fake["logits"], self.real_target)

    def generator_loss(self, batch, ctx):
        if self.generator_weight == 1.0:  # the plain GAN game (every generation run)
            return self.loss.generator(batch.out_g["logits"])
        return self.generator_weight * self.loss.generator(batch.out_g["logits"])


# What each GAN loss (course_lib.nn.losses.LOSSES) requires beside itself: the WGANs' Lipschitz constraints.
LOSS_REQUIRES: dict[str, tuple] = {
    "wgan-gp": (NeedsTerm("gradient-penalty", "the WGAN-GP critic is kept 1-Lipschitz by the gradient penalty"),),
    "wgan-clip": (
        NeedsTerm("weight-clipping", "the WGAN critic is kept Lipschitz by clipping its weights"),
        Needs("optim.optimizer", ("rmsprop",), "Arjovsky et al. found momentum (Adam) unstable with clipping"),
    ),
}


def instance_noise_std(initial: float, step: int, total_steps: int) -> float:
    """sigma_0 (1 - step / total), reaching 0 at the end of the run."""
    return initial * max(0.0, 1.0 - step / max(total_steps, 1))


@register_term("instance-noise")
class InstanceNoise(LossTerm):
    """Gaussian noise on every image D sees, sigma_t = std (1 - t / T) * factor (Sonderby et al. 2017).

    `factor` (default 1) is a knob for callbacks such as the diversity controller; it is checkpointed.
    The noise comes from the run's noise stream, so runs stay reproducible and resumable.
    """

    def __init__(self, std: float = 0.1):
        _check_weight("instance-noise", "std", std)
        self.initial_std, self.factor = std, 1.0

    def discriminator_input(self, images, ctx):
        std = instance_noise_std(self.initial_std, ctx.step, ctx.config.optim.steps) * self.factor
        if std <= 0:
            return images
        noise = ctx.randn_rows(images.shape, dtype=images.dtype, device=images.device)
        return images + std * noise

    def state_dict(self):
        return {"factor": self.factor}

    def load_state_dict(self, state):
        self.factor = float(state["factor"])


@register_term("feature-matching")
class FeatureMatching(LossTerm):
    """G matches the mean of D's penultimate features on real data (Salimans et al. 2016). Under torchrun the
    means are the global batch's (all-reduced, `distributed.global_mean`), as one process computes them."""

    def __init__(self, weight: float = 1.0):
        self.weight = _check_weight("feature-matching", "weight", weight)

    def generator_loss(self, batch, ctx):
        real, fake = batch.out_real["features"], batch.out_g["features"]
        world_size = getattr(ctx, "world_size", 1)
        if world_size > 1:  # one row each: the global batch's means (feature_matching's mean of one row is it)
            real = distributed.global_mean(real.detach().float().mean(0), world_size)[None]
            fake = distributed.global_mean(fake.float().mean(0), world_size)[None]
        value = feature_matching(real, fake)
        batch.metrics["feature_matching"] = value.detach()
        return self.weight * value


@register_term("auxiliary-classifier")
class AuxiliaryClassifier(LossTerm):
    """ACGAN (Odena et al. 2017): D's auxiliary head classifies real and fake images; G wants its
    fakes classified as the label they were drawn for."""

    requires = (Needs("model.conditional", ("acgan",), "only ACGAN's discriminator has the class head"),)

    def __init__(self, weight: float = 1.0):
        self.weight = _check_weight("auxiliary-classifier", "weight", weight)

    def discriminator_loss(self, batch, ctx):
        real = self.weight * F.cross_entropy(batch.out_real["class_logits"].float(), batch.real_labels)
        fake = self.weight * F.cross_entropy(batch.out_fake["class_logits"].float(), batch.fake_labels)
        return real, fake

    def generator_loss(self, batch, ctx):
        value = self.weight * F.cross_entropy(batch.out_g["class_logits"].float(), batch.fake_labels)
        batch.metrics["aux_loss"] = value.detach()
        return value


@register_term("mutual-information")
class MutualInformation(LossTerm):
    """InfoGAN (Chen et al. 2016): minus the Q head's log-likelihood of the latent codes, a variational
    lower bound on I(c; G(z, c)), minimised by both players. Categorical codes: cross-entropy;
    continuous codes: a unit-variance Gaussian, i.e. half the squared error."""

    requires = (Needs("model.conditional", ("infogan",), "only InfoGAN's generator has latent codes"),)

    def __init__(self, weight: float = 1.0):
        self.weight = _check_weight("mutual-information", "weight", weight)

    def _loss(self, out: dict, z: torch.Tensor, ctx) -> torch.Tensor:
        _, cat, cont = ctx.generator.split_codes(z)
        loss = F.cross_entropy(out["info_cat_logits"].float(), cat)
        if cont.shape[1]:
            loss = loss + 0.5 * ((out["info_cont"].float() - cont) ** 2).sum(dim=1).mean()
        return self.weight * loss

    def discriminator_loss(self, batch, ctx):
        return self._loss(batch.out_fake, batch.z, ctx)

    def generator_loss(self, batch, ctx):
        value = self._loss(batch.out_g, batch.z, ctx)
        batch.metrics["aux_loss"] = value.detach()
        return value


# The terms a conditioning's networks need to learn their extra heads.
CONDITIONING_REQUIRES: dict[str, tuple] = {
    "acgan": (NeedsTerm("auxiliary-classifier", "ACGAN's class head is trained by it"),),
    "infogan": (NeedsTerm("mutual-information", "InfoGAN's codes are learnt through it"),),
}


@register_term("gradient-penalty")
class GradientPenalty(LossTerm):
    """WGAN-GP (Gulrajani et al. 2017): lambda E[(||grad D(x_hat)||_2 - 1)^2] between real and fake."""

    full_precision = True
    requires = (NO_BATCH_NORM,)

    def __init__(self, weight: float = 10.0):
        self.weight = _check_weight("gradient-penalty", "weight", weight)

    def discriminator_loss(self, batch, ctx):
        # The mixing weights come from the noise stream, one per sample of the global batch (this rank's rows).
        alpha = ctx.rand_rows((batch.real.shape[0],), device=batch.real.device)
        value = gradient_penalty(
            ctx.discriminator, batch.real, batch.fake, labels=ctx.condition(batch.real_labels), alpha=alpha
        )
        batch.metrics["gradient_penalty"] = value.detach()
        return self.weight * value


@register_term("r1")
class R1Penalty(LossTerm):
    """R1 (Mescheder et al. 2018): (gamma / 2) E_x[||grad_x D(x)||^2] on real data only."""

    full_precision = True

    def __init__(self, gamma: float = 10.0):
        self.gamma = _check_weight("r1", "gamma", gamma)

    def discriminator_loss(self, batch, ctx):
        value = r1_penalty(ctx.discriminator, batch.real, ctx.condition(batch.real_labels))
        batch.metrics["r1_penalty"] = value.detach()
        return 0.5 * self.gamma * value


@torch.no_grad()
def clip_weights_(module: nn.Module, limit: float) -> None:
    """WGAN's original Lipschitz constraint: clamp every parameter of `module` to [-limit, limit], in place."""
    for p in module.parameters():
        p.clamp_(-limit, limit)


@register_term("weight-clipping")
class WeightClipping(LossTerm):
    """WGAN (Arjovsky et al. 2017): after each critic update, clamp every weight to [-c, c]."""

    def __init__(self, clip: float = 0.01):
        self.clip_value = _check_weight("weight-clipping", "clip", clip)

    def after_discriminator_step(self, ctx):
        clip_weights_(ctx.discriminator, self.clip_value)


class HistoricalAverage:
    """lambda ||theta - mean of all past thetas||^2 for one module (the mean starts at its current values)."""

    def __init__(self, module: nn.Module, weight: float):
        self.weight = weight
        self.mean = [p.detach().clone() for p in module.parameters()]
        self.count = 1

    def penalty(self, module: nn.Module) -> torch.Tensor:
        return self.weight * sum(((p - m) ** 2).sum() for p, m in zip(module.parameters(), self.mean))

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.count += 1
        for m, p in zip(self.mean, module.parameters()):
            m.add_((p.detach() - m) / self.count)  # running mean of all parameter values so far

    def state_dict(self) -> dict:
        return {"mean": [m.clone() for m in self.mean], "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        for m, saved in zip(self.mean, state["mean"]):
            m.copy_(saved)
        self.count = int(state["count"])


@register_term("historical-averaging")
class HistoricalAveraging(LossTerm):
    """Salimans et al. 2016, sec. 3.3: lambda ||theta - mean of past thetas||^2 in each player's loss."""

    full_precision = True  # a sum over every parameter: kept out of reduced precision

    def __init__(self, weight: float = 1e-4):
        self.weight = _check_weight("historical-averaging", "weight", weight)
        self.generator_mean = self.discriminator_mean = None

    def setup(self, ctx):
        self.generator_mean = HistoricalAverage(ctx.generator, self.weight)
        self.discriminator_mean = HistoricalAverage(ctx.discriminator, self.weight)

    def discriminator_loss(self, batch, ctx):
        return self.discriminator_mean.penalty(ctx.discriminator)

    def generator_loss(self, batch, ctx):
        return self.generator_mean.penalty(ctx.generator)

    def after_discriminator_step(self, ctx):
        self.discriminator_mean.update(ctx.discriminator)

    def after_generator_step(self, ctx):
        self.generator_mean.update(ctx.generator)

    def state_dict(self):
        return {"generator": self.generator_mean.state_dict(), "discriminator": self.discriminator_mean.state_dict()}

    def load_state_dict(self, state):
        self.generator_mean.load_state_dict(state["generator"])
        self.discriminator_mean.load_state_dict(state["discriminator"])


@register_term("l1")
class L1Reconstruction(LossTerm):
    """pix2pix (Isola et al. 2017): lambda E|y - G(x)|, the mean absolute error of the translation G(x) against
    its paired target y (batch.real). Alone it gives the blurry per-pixel median; the adversarial term sharpens it."""

    requires = (Needs("data.task", ("pix2pix",), "it compares G(x) with x's paired target"),)

    def __init__(self, weight: float = 100.0):
        self.weight = _check_weight("l1", "weight", weight)

    def generator_loss(self, batch, ctx):
        value = (batch.fake.float() - batch.real.float()).abs().mean()
        batch.metrics["l1"] = value.detach()
        return self.weight * value


@register_term("cycle")
class CycleConsistency(LossTerm):
    """CycleGAN (Zhu et al. 2017): lambda (E|F(G(a)) - a| + E|G(F(b)) - b|) / 2, translating the fakes back.

    The generator maps the stacked domains [a; b] to [F(b); G(a)] (`course_lib.nn.translation`), so
    applying it to the fakes gives [F(G(a)); G(F(b))], to compare with the real [a; b]. The mean over
    both halves is half the paper's sum, as is the adversarial loss's mean over both discriminators,
    so lambda keeps the paper's meaning."""

    requires = (Needs("data.task", ("cyclegan",), "it translates between two unpaired domains and back"),)

    def __init__(self, weight: float = 10.0):
        self.weight = _check_weight("cycle", "weight", weight)

    def generator_loss(self, batch, ctx):
        reconstructed = ctx.forward_g(batch.fake)
        value = (reconstructed.float() - batch.real.float()).abs().mean()
        batch.metrics["cycle"] = value.detach()
        return self.weight * value


def _check_weight(term: str, setting: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"loss term {term!r}: {setting} must be a number >= 0, got {value!r}")
    return value


# ----------------------------------------------------------------------------- from the config
def check_term_specs(specs: Any) -> None:
    """Raise ConfigError unless `specs` is a list of {name: <registered or module:Class>, ...}, each built
    once (so bad settings fail when the config is read) and each name at most once."""
    if not isinstance(specs, list) or not all(isinstance(s, dict) and "name" in s for s in specs):
        raise ConfigError(
            f"loss.terms must be a list of mappings, each with a 'name' (registered: {', '.join(TERMS.names())})"
        )
    seen = set()
    for spec in specs:
        cls = TERMS.get(spec["name"])
        if cls in seen:
            raise ConfigError(f"loss.terms lists {spec['name']!r} twice; give it once, with its settings")
        seen.add(cls)
        TERMS.build(spec)


def check_requirements(config: TrainConfig) -> None:
    """What the loss, the conditioning and every loss term require of the config (their `requires`), checked
    in this one place: a one-line ConfigError naming who needs what, and the setting in the way."""
    checks = [(f"loss {config.loss.name!r}", r) for r in LOSS_REQUIRES.get(config.loss.name, ())]
    checks += [
        (f"model.conditional {config.model.conditional!r}", r)
        for r in CONDITIONING_REQUIRES.get(config.model.conditional, ())
    ]
    checks += [
        (f"loss term {spec['name']!r}", r) for spec in config.loss.terms for r in TERMS.get(spec["name"]).requires
    ]
    for who, requirement in checks:
        problem = requirement.problem(config)
        if problem:
            raise ConfigError(f"{who} {problem}")


def generator_terms(config: TrainConfig) -> list[LossTerm]:
    """The listed terms that add to G's loss with a nonzero weight."""
    built = [TERMS.build(spec) for spec in config.loss.terms]
    return [t for t in built if type(t).generator_loss is not LossTerm.generator_loss and getattr(t, "weight", 1) != 0]


def resolved_d_norm(config: TrainConfig) -> str:
    """model.d_norm with 'auto' resolved: what a term's requirement says (NO_BATCH_NORM: layer), else 'auto',
    which the networks read as their architecture's own choice (batch norm in DCGAN, the papers' in pix2pix
    and CycleGAN)."""
    if config.model.d_norm != "auto":
        return config.model.d_norm
    for spec in config.loss.terms:
        for requirement in TERMS.get(spec["name"]).requires:
            if isinstance(requirement, Needs) and requirement.setting == "model.d_norm" and requirement.auto:
                return requirement.auto
    return "auto"


def build_terms(config: TrainConfig) -> list[LossTerm]:
    """The adversarial loss, then the terms loss.terms lists, in that order: the order their contributions
    are added."""
    adversarial = AdversarialLoss(
        get_loss(config.loss.name),
        real_target=1.0 - config.loss.label_smoothing,
        generator_weight=config.loss.adversarial_weight,
    )
    return [adversarial, *(TERMS.build(spec) for spec in config.loss.terms)]


def add_contributions(total: torch.Tensor | None, contribution) -> torch.Tensor | None:
    """total + each tensor of a term's contribution, in order (None adds nothing)."""
    if contribution is None:
        return total
    for value in contribution if isinstance(contribution, tuple) else (contribution,):
        total = value if total is None else total + value
    return total
