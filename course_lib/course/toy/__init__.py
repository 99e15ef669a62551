"""Toy GANs small enough to watch, split by topic; `from course_lib.course import toy` gives all of them.

- gan_1d: the 1-D GAN of Prince's chapter 15 (figure 15.1), hand-derived gradients in numpy.
- divergences: the optimal discriminator, the GAN loss at it, KL / JS on a grid, and the closed forms of
  problems 15.4 (shifted uniforms) and 15.5 (Gaussians).
- mixtures: the 2-D Gaussian mixtures (ring, grid) and VEEGAN-style mode coverage.
- train_2d: small MLP GANs on those mixtures (standard GAN, LSGAN, hinge, WGAN with clipping, WGAN-GP,
  all with the losses and gradient penalty of course_lib.nn.losses) and the method comparison.
- vanishing_gradients: the generator's gradient while only the discriminator trains (figure 15.7).
- threads: run torch single-threaded around these tiny networks.
"""

from course_lib.course.toy.divergences import (
    LOG2,
    gan_loss_at_optimum,
    gaussian_density,
    gaussian_divergences_numerical,
    gaussian_kl,
    gaussian_w2,
    js_divergence,
    js_from_gan_loss,
    js_quality_coverage,
    kl_divergence,
    optimal_discriminator,
    uniform_density,
    uniform_shift_divergences,
    uniform_shift_divergences_numerical,
)
from course_lib.course.toy.gan_1d import (
    GENERATOR_LOSSES_1D,
    ToyGAN1DHistory,
    discriminator_1d,
    discriminator_grad_1d,
    discriminator_loss_1d,
    fit_discriminator_1d,
    generator_grad_1d,
    generator_loss_1d,
    log_sigmoid,
    optimal_logistic_parameters_1d,
    sigmoid,
    train_toy_gan_1d,
)
from course_lib.course.toy.mixtures import (
    MIXTURES,
    GaussianMixture2D,
    ModeCoverage,
    get_mixture,
    grid_mixture,
    mode_coverage,
    ring_mixture,
)
from course_lib.course.toy.threads import single_thread
from course_lib.course.toy.train_2d import (
    LOSS_OF_METHOD,
    METHODS,
    CoverageRow,
    ToyCritic,
    ToyGenerator,
    ToyTrainConfig,
    ToyTrainResult,
    clip_weights_,
    compare_methods,
    critic_on_grid,
    default_config,
    format_coverage_table,
    mlp,
    train_toy_gan_2d,
)
from course_lib.course.toy.vanishing_gradients import (
    FrozenGeneratorRun,
    SampleReal,
    frozen_generator_gradients,
    small_image_gan,
    train_gan_snapshots,
)

__all__ = [
    # divergences
    "LOG2",
    "gan_loss_at_optimum",
    "gaussian_density",
    "gaussian_divergences_numerical",
    "gaussian_kl",
    "gaussian_w2",
    "js_divergence",
    "js_from_gan_loss",
    "js_quality_coverage",
    "kl_divergence",
    "optimal_discriminator",
    "uniform_density",
    "uniform_shift_divergences",
    "uniform_shift_divergences_numerical",
    # gan_1d
    "GENERATOR_LOSSES_1D",
    "ToyGAN1DHistory",
    "discriminator_1d",
    "discriminator_grad_1d",
    "discriminator_loss_1d",
    "fit_discriminator_1d",
    "generator_grad_1d",
    "generator_loss_1d",
    "log_sigmoid",
    "optimal_logistic_parameters_1d",
    "sigmoid",
    "train_toy_gan_1d",
    # mixtures
    "MIXTURES",
    "GaussianMixture2D",
    "ModeCoverage",
    "get_mixture",
    "grid_mixture",
    "mode_coverage",
    "ring_mixture",
    # threads
    "single_thread",
    # train_2d
    "LOSS_OF_METHOD",
    "METHODS",
    "CoverageRow",
    "ToyCritic",
    "ToyGenerator",
    "ToyTrainConfig",
    "ToyTrainResult",
    "clip_weights_",
    "compare_methods",
    "critic_on_grid",
    "default_config",
    "format_coverage_table",
    "mlp",
    "train_toy_gan_2d",
    # vanishing_gradients
    "FrozenGeneratorRun",
    "SampleReal",
    "frozen_generator_gradients",
    "small_image_gan",
    "train_gan_snapshots",
]
