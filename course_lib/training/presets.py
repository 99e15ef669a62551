"""The published settings of each improvement, by name.

`course-lib train --preset wgan-gp` or `preset: wgan-gp` in a config applies one; presets combine
(`--preset ema,ttur`), and explicit settings override them. Values are `TrainConfig` fields.
"""

from __future__ import annotations

# Published settings per improvement. Values are TrainConfig fields.
PRESETS: dict[str, dict] = {
    "dcgan": {},  # Radford et al.: the defaults (Adam 2e-4, betas (0.5, 0.999), non-saturating loss)
    "lsgan": {"loss": "lsgan"},
    "hinge": {"loss": "hinge"},
    # Arjovsky et al. 2017, Algorithm 1: RMSprop, lr 5e-5, clip 0.01, n_critic 5.
    "wgan-clip": {
        "loss": "wgan-clip",
        "optimizer": "rmsprop",
        "lr_g": 5e-5,
        "lr_d": 5e-5,
        "clip_value": 0.01,
        "d_steps": 5,
    },
    # Gulrajani et al. 2017, Algorithm 1: lambda 10, n_critic 5, Adam(1e-4, 0, 0.9), no batch norm in the critic.
    "wgan-gp": {
        "loss": "wgan-gp",
        "gp_weight": 10.0,
        "d_steps": 5,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "beta1": 0.0,
        "beta2": 0.9,
        "d_norm": "layer",
    },
    # Miyato et al. 2018: spectral norm in D with the hinge loss, Adam(2e-4, 0.5, 0.999) at n_dis 1 for DCGAN-sized models.
    "spectral-norm": {"spectral_norm": True, "d_norm": "none", "loss": "hinge"},
    "label-smoothing": {"label_smoothing": 0.1},  # Salimans et al.: real targets 0.9
    "instance-noise": {"instance_noise": 0.1},
    "feature-matching": {"feature_matching": 1.0},
    "minibatch-discrimination": {"minibatch_discrimination": 50},
    "minibatch-stddev": {"minibatch_stddev": True},
    "historical-averaging": {"historical_averaging": 1e-4},
    # Heusel et al. 2017: a faster discriminator than generator (here 4e-4 vs 1e-4).
    "ttur": {"lr_g": 1e-4, "lr_d": 4e-4},
    "ema": {"ema": 0.999},
    # Mescheder et al. 2018: the R1 penalty, gamma/2 E[||grad D(x)||^2] on real data, with the non-saturating
    # loss; gamma 10 as in their CelebA/LSUN experiments. Their discriminators have no batch norm (it would
    # mix the per-sample gradients the penalty is about), so neither does this one.
    "r1": {"r1_weight": 10.0, "d_norm": "none"},
    "upsample-conv": {"g_upsample": "nearest"},
    "cgan": {"conditional": "cgan"},
    "acgan": {"conditional": "acgan"},
    # Chen et al. 2016 (MNIST): 62 noise dims, one 10-way categorical and two continuous codes, lambda 1, and
    # the paper's faster generator, Adam lr 1e-3 for G vs 2e-4 for D. The learning rates matter: at 2e-4 for
    # both, the categorical code settled on style (17% code-to-digit accuracy after 3,000 steps); with the
    # paper's, it picks the digit (about 40-50% after 1,000-2,000 steps; see tests/test_conditional.py).
    "infogan": {
        "conditional": "infogan",
        "latent_dim": 62,
        "info_cat": 10,
        "info_cont": 2,
        "info_weight": 1.0,
        "lr_g": 1e-3,
        "lr_d": 2e-4,
    },
    # The main job's recipe (README quick start; issue 18), which `course-lib train` applies to MNIST when
    # neither --config nor --preset is given. Still DCGAN (Adam with betas (0.5, 0.999), non-saturating loss,
    # batch norm), departing from Radford et al. where a 2-core CPU and a few minutes need it: half the width,
    # upsample + conv in G (the largest gain in docs/results/mnist_improvements), batch 64, an EMA generator
    # for sampling, and a 5x larger learning rate (1e-3) for 1,000 steps: in docs/results/main_job/recipe_sweep
    # every variant levels off near 60% recognised digits, and lr 1e-3 gets there in two thirds of the steps
    # 2e-4 needs (and with every digit >= 5% of the samples).
    "mnist-main-job": {
        "width": 32,
        "g_upsample": "nearest",
        "batch_size": 64,
        "lr_g": 1e-3,
        "lr_d": 1e-3,
        "steps": 1000,
        "ema": 0.995,
    },
    # Chapter 15's StyleGAN ideas at MNIST scale (course_lib.nn.style, notebook 14): a 4-layer mapping network to a
    # 64-d W, modulated/demodulated convolutions (StyleGAN2), noise inputs, mixing regularisation with probability
    # 0.9 as in Karras et al. 2019; the main job's batch, EMA and DCGAN discriminator, but the DCGAN default learning
    # rate Adam(2e-4, 0.5, 0.999), not the main job's 1e-3. The synthesis layers need StyleGAN2's activation gain
    # (course_lib.nn.style.ACTIVATION_GAIN): without it this preset collapsed to one image (issue 19).
    "stylegan": {
        "arch": "style",
        "latent_dim": 64,
        "width": 32,
        "style": "modulated",
        "mapping_layers": 4,
        "style_mixing": 0.9,
        "batch_size": 64,
        "ema": 0.995,
    },
    # Karras et al. 2018's progressive growing, 7 -> 14 -> 28 (course_lib.nn.progressive): pixel norm, minibatch
    # stddev, each resolution trained `stable_steps` and faded in over `fade_steps` by the 'progressive' callback.
    "progressive": {
        "arch": "progressive",
        "latent_dim": 64,
        "width": 32,
        "batch_size": 64,
        "ema": 0.995,
        "callbacks": [{"name": "progressive", "stable_steps": 300, "fade_steps": 300}],
    },
    # Isola et al. 2017 (pix2pix): U-Net generator, conditional PatchGAN, L1 with lambda 100 plus the non-saturating
    # GAN loss, Adam(2e-4, 0.5, 0.999). The translation is the course's paired MNIST task (course_lib.data.translation).
    "pix2pix": {
        "task": "pix2pix",
        "arch": "unet",
        "translation": "superres",
        "l1_weight": 100.0,
        "loss": "non-saturating",
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    # Zhu et al. 2017 (CycleGAN): two U-Nets (their code's option beside the ResNet generator) and two PatchGANs with
    # instance norm, the least-squares GAN loss, cycle lambda 10, Adam(2e-4, 0.5, 0.999); unpaired MNIST domains:
    # digits and their stroke-thickened versions.
    "cyclegan": {
        "task": "cyclegan",
        "arch": "unet",
        "translation": "thicken",
        "cycle_weight": 10.0,
        "loss": "lsgan",
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
    },
}

# The preset `course-lib train` applies on its own to MNIST (see course_lib.cli.commands.main_job_recipe).
MAIN_JOB_PRESET = "mnist-main-job"
