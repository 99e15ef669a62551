"""Loss terms: every objective and regulariser of a GAN run, as objects with one small interface.

The training step (`course_lib.training.trainer`) knows no loss names and no tricks: it sums what
its terms contribute. A term may

    discriminator_input(images, trainer)   change the images D sees (instance noise); default: unchanged
    discriminator_loss(batch, trainer)     add to D's loss: a tensor, a tuple of tensors (added in
                                           order), or None
    generator_loss(batch, trainer)         add to G's loss, likewise
    after_discriminator_step(trainer)      act after each optimiser step of D (weight clipping, averages)
    after_generator_step(trainer)          act after each optimiser step of G
    state_dict() / load_state_dict(state)  its own state, saved in every checkpoint

`full_precision = True` computes the term outside autocast (second-order gradients). Terms run in
the order `build_terms` lists them; `batch` is a `StepBatch` holding the real and fake images, the
latents, the labels and D's outputs (dicts with 'logits', 'features' and, for ACGAN/InfoGAN, the
auxiliary heads). A term reports values to the training log by writing to `batch.metrics`.

To add a term: subclass `LossTerm`, add a config field for its weight, and one line in `build_terms`.
docs/architecture.md walks through R1 as the example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.nn.losses import GANLoss, feature_matching, get_loss, gradient_penalty, r1_penalty

if TYPE_CHECKING:
    from course_lib.training.config import TrainConfig
    from course_lib.training.trainer import Trainer


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
    """Base class; see the module docstring. `name` keys the term's state in checkpoints."""

    name = "term"
    full_precision = False

    def setup(self, trainer: Trainer) -> None:
        """Called once the models exist, before any state is loaded."""

    def discriminator_input(self, images: torch.Tensor, trainer: Trainer) -> torch.Tensor:
        return images

    def discriminator_loss(self, batch: StepBatch, trainer: Trainer):
        return None

    def generator_loss(self, batch: StepBatch, trainer: Trainer):
        return None

    def after_discriminator_step(self, trainer: Trainer) -> None:
        pass

    def after_generator_step(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict) -> None:
        pass


class AdversarialLoss(LossTerm):
    """The GAN game itself (`course_lib.nn.losses`): D's loss on real and fake logits, G's on its fakes.

    real_target < 1 is one-sided label smoothing (Salimans et al. 2016). Also logs D(x) and D(G(z)):
    sigmoid means for probabilistic losses, raw score means otherwise. `generator_weight` scales G's
    side only (image translation weighs it against the L1 term; 0 trains D as an observer).
    """

    name = "adversarial"

    def __init__(self, loss: GANLoss, real_target: float = 1.0, generator_weight: float = 1.0):
        self.loss, self.real_target, self.generator_weight = loss, real_target, generator_weight

    def discriminator_loss(self, batch, trainer):
        squash = torch.sigmoid if self.loss.probabilistic else (lambda t: t)
        batch.metrics["d_real"] = squash(batch.out_real["logits"].detach().float()).mean()
        batch.metrics["d_fake"] = squash(batch.out_fake["logits"].detach().float()).mean()
        return self.loss.discriminator(batch.out_real["logits"], batch.out_fake["logits"], self.real_target)

    def generator_loss(self, batch, trainer):
        if self.generator_weight == 1.0:  # the plain GAN game (every generation run)
            return self.loss.generator(batch.out_g["logits"])
        return self.generator_weight * self.loss.generator(batch.out_g["logits"])


def instance_noise_std(initial: float, step: int, total_steps: int) -> float:
    """sigma_0 (1 - step / total), reaching 0 at the end of the run."""
    return initial * max(0.0, 1.0 - step / max(total_steps, 1))


class InstanceNoise(LossTerm):
    """Gaussian noise on every image D sees, sigma_t = sigma_0 (1 - t / T) * factor (Sonderby et al. 2017).

    `factor` (default 1) is a knob for callbacks such as the diversity controller; it is checkpointed.
    The noise comes from the trainer's noise stream, so runs stay reproducible and resumable.
    """

    name = "instance_noise"

    def __init__(self, initial_std: float):
        self.initial_std, self.factor = initial_std, 1.0

    def discriminator_input(self, images, trainer):
        std = instance_noise_std(self.initial_std, trainer.step, trainer.config.steps) * self.factor
        if std <= 0:
            return images
        noise = torch.randn(images.shape, device=images.device, generator=trainer.noise_rng, dtype=images.dtype)
        return images + std * noise

    def state_dict(self):
        return {"factor": self.factor}

    def load_state_dict(self, state):
        self.factor = float(state["factor"])


class FeatureMatching(LossTerm):
    """G matches the mean of D's penultimate features on real data (Salimans et al. 2016)."""

    name = "feature_matching"

    def __init__(self, weight: float):
        self.weight = weight

    def generator_loss(self, batch, trainer):
        value = feature_matching(batch.out_real["features"], batch.out_g["features"])
        batch.metrics["feature_matching"] = value.detach()
        return self.weight * value


class AuxiliaryClassifier(LossTerm):
    """ACGAN (Odena et al. 2017): D's auxiliary head classifies real and fake images; G wants its
    fakes classified as the label they were drawn for."""

    name = "auxiliary_classifier"

    def __init__(self, weight: float):
        self.weight = weight

    def discriminator_loss(self, batch, trainer):
        real = self.weight * F.cross_entropy(batch.out_real["class_logits"].float(), batch.real_labels)
        fake = self.weight * F.cross_entropy(batch.out_fake["class_logits"].float(), batch.fake_labels)
        return real, fake

    def generator_loss(self, batch, trainer):
        value = self.weight * F.cross_entropy(batch.out_g["class_logits"].float(), batch.fake_labels)
        batch.metrics["aux_loss"] = value.detach()
        return value


class MutualInformation(LossTerm):
    """InfoGAN (Chen et al. 2016): minus the Q head's log-likelihood of the latent codes, a variational
    lower bound on I(c; G(z, c)), minimised by both players. Categorical codes: cross-entropy;
    continuous codes: a unit-variance Gaussian, i.e. half the squared error."""

    name = "mutual_information"

    def __init__(self, weight: float):
        self.weight = weight

    def _loss(self, out: dict, z: torch.Tensor, trainer) -> torch.Tensor:
        _, cat, cont = trainer.generator.split_codes(z)
        loss = F.cross_entropy(out["info_cat_logits"].float(), cat)
        if cont.shape[1]:
            loss = loss + 0.5 * ((out["info_cont"].float() - cont) ** 2).sum(dim=1).mean()
        return self.weight * loss

    def discriminator_loss(self, batch, trainer):
        return self._loss(batch.out_fake, batch.z, trainer)

    def generator_loss(self, batch, trainer):
        value = self._loss(batch.out_g, batch.z, trainer)
        batch.metrics["aux_loss"] = value.detach()
        return value


class GradientPenalty(LossTerm):
    """WGAN-GP (Gulrajani et al. 2017): lambda E[(||grad D(x_hat)||_2 - 1)^2] between real and fake."""

    name = "gradient_penalty"
    full_precision = True

    def __init__(self, weight: float):
        self.weight = weight

    def discriminator_loss(self, batch, trainer):
        value = gradient_penalty(
            trainer.discriminator,
            batch.real,
            batch.fake,
            trainer.noise_rng,
            trainer.discriminator_labels(batch.real_labels),
        )
        batch.metrics["gradient_penalty"] = value.detach()
        return self.weight * value


class R1Penalty(LossTerm):
    """R1 (Mescheder et al. 2018): (gamma / 2) E_x[||grad_x D(x)||^2] on real data only."""

    name = "r1"
    full_precision = True

    def __init__(self, gamma: float):
        self.gamma = gamma

    def discriminator_loss(self, batch, trainer):
        value = r1_penalty(trainer.discriminator, batch.real, trainer.discriminator_labels(batch.real_labels))
        batch.metrics["r1_penalty"] = value.detach()
        return 0.5 * self.gamma * value


@torch.no_grad()
def clip_weights_(module: nn.Module, limit: float) -> None:
    """WGAN's original Lipschitz constraint: clamp every parameter of `module` to [-limit, limit], in place."""
    for p in module.parameters():
        p.clamp_(-limit, limit)


class WeightClipping(LossTerm):
    """WGAN (Arjovsky et al. 2017): after each critic update, clamp every weight to [-c, c]."""

    name = "weight_clipping"

    def __init__(self, clip_value: float):
        self.clip_value = clip_value

    def after_discriminator_step(self, trainer):
        clip_weights_(trainer.discriminator, self.clip_value)


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


class HistoricalAveraging(LossTerm):
    """Salimans et al. 2016, sec. 3.3: lambda ||theta - mean of past thetas||^2 in each player's loss."""

    name = "historical_averaging"
    full_precision = True  # a sum over every parameter: kept out of reduced precision

    def __init__(self, weight: float):
        self.weight = weight
        self.generator_mean = self.discriminator_mean = None

    def setup(self, trainer):
        self.generator_mean = HistoricalAverage(trainer.generator, self.weight)
        self.discriminator_mean = HistoricalAverage(trainer.discriminator, self.weight)

    def discriminator_loss(self, batch, trainer):
        return self.discriminator_mean.penalty(trainer.discriminator)

    def generator_loss(self, batch, trainer):
        return self.generator_mean.penalty(trainer.generator)

    def after_discriminator_step(self, trainer):
        self.discriminator_mean.update(trainer.discriminator)

    def after_generator_step(self, trainer):
        self.generator_mean.update(trainer.generator)

    def state_dict(self):
        return {"generator": self.generator_mean.state_dict(), "discriminator": self.discriminator_mean.state_dict()}

    def load_state_dict(self, state):
        self.generator_mean.load_state_dict(state["generator"])
        self.discriminator_mean.load_state_dict(state["discriminator"])


class L1Reconstruction(LossTerm):
    """pix2pix (Isola et al. 2017): lambda E|y - G(x)|, the mean absolute error of the translation G(x) against
    its paired target y (batch.real). Alone it gives the blurry per-pixel median; the adversarial term sharpens it."""

    name = "l1"

    def __init__(self, weight: float):
        self.weight = weight

    def generator_loss(self, batch, trainer):
        value = (batch.fake.float() - batch.real.float()).abs().mean()
        batch.metrics["l1"] = value.detach()
        return self.weight * value


class CycleConsistency(LossTerm):
    """CycleGAN (Zhu et al. 2017): lambda (E|F(G(a)) - a| + E|G(F(b)) - b|) / 2, translating the fakes back.

    The generator maps the stacked domains [a; b] to [F(b); G(a)] (`course_lib.nn.translation`), so
    applying it to the fakes gives [F(G(a)); G(F(b))], to compare with the real [a; b]. The mean over
    both halves is half the paper's sum, as is the adversarial loss's mean over both discriminators,
    so lambda keeps the paper's meaning."""

    name = "cycle"

    def __init__(self, weight: float):
        self.weight = weight

    def generator_loss(self, batch, trainer):
        reconstructed = trainer.g_train(batch.fake)
        value = (reconstructed.float() - batch.real.float()).abs().mean()
        batch.metrics["cycle"] = value.detach()
        return self.weight * value


def build_terms(config: TrainConfig) -> list[LossTerm]:
    """The terms a config asks for, in the order their contributions are added (the one place that
    maps settings to terms). The adversarial loss always comes first."""
    terms: list[LossTerm] = [
        AdversarialLoss(
            get_loss(config.loss), real_target=1.0 - config.label_smoothing, generator_weight=config.adversarial_weight
        )
    ]
    if config.instance_noise:
        terms.append(InstanceNoise(config.instance_noise))
    if config.feature_matching:
        terms.append(FeatureMatching(config.feature_matching))
    if config.conditional == "acgan":
        terms.append(AuxiliaryClassifier(config.aux_weight))
    if config.conditional == "infogan":
        terms.append(MutualInformation(config.info_weight))
    if config.loss == "wgan-gp":
        terms.append(GradientPenalty(config.gp_weight))
    if config.r1_weight:
        terms.append(R1Penalty(config.r1_weight))
    if config.loss == "wgan-clip":
        terms.append(WeightClipping(config.clip_value))
    if config.historical_averaging:
        terms.append(HistoricalAveraging(config.historical_averaging))
    if config.l1_weight:
        terms.append(L1Reconstruction(config.l1_weight))
    if config.cycle_weight:
        terms.append(CycleConsistency(config.cycle_weight))
    return terms


def add_contributions(total: torch.Tensor | None, contribution) -> torch.Tensor | None:
    """total + each tensor of a term's contribution, in order (None adds nothing)."""
    if contribution is None:
        return total
    for value in contribution if isinstance(contribution, tuple) else (contribution,):
        total = value if total is None else total + value
    return total
