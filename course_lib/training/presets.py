"""The published settings of each improvement, by name: small mappings of config sections.

`course-lib train --preset wgan-gp` or `preset: wgan-gp` in a config applies one; presets combine
(`--preset ema,ttur`: sections merge field by field, loss terms and callbacks by name), and the config's
own sections and `--set section.field=value` override them. Each preset's `description` is one line that
says what it sets besides its own trick; `course-lib train --list-presets` prints them with the settings.

Beware a default that is not a preset: `course-lib train` on MNIST without --config or --preset starts from
the main job's recipe (`mnist-main-job`: width 32, batch 64, ...). Any --preset replaces that recipe, so the
fields a preset leaves alone take the library defaults (DCGAN width 64, batch 128, 1,000 steps, lr 2e-4).
"""

from __future__ import annotations

from typing import Any

# Published settings per improvement: {description, **sections}. Terms and callbacks are {name, **settings}.
PRESETS: dict[str, dict[str, Any]] = {
    "dcgan": {
        "description": "Radford et al. 2016: the library defaults (width 64, batch 128, Adam 2e-4 (0.5, 0.999), "
        "non-saturating loss, batch norm); sets nothing"
    },
    "lsgan": {
        "description": "least-squares loss (Mao et al. 2017); nothing else (defaults: width 64, batch 128)",
        "loss": {"name": "lsgan"},
    },
    "hinge": {
        "description": "hinge loss (Lim & Ye 2017; Miyato et al.); nothing else (defaults: width 64, batch 128)",
        "loss": {"name": "hinge"},
    },
    # Arjovsky et al. 2017, Algorithm 1: RMSprop, lr 5e-5, clip 0.01, n_critic 5.
    "wgan-clip": {
        "description": "WGAN with weight clipping c 0.01 (Arjovsky et al. 2017); also RMSprop, lr 5e-5 for both "
        "players and 5 critic steps per G step (defaults: width 64, batch 128)",
        "loss": {"name": "wgan-clip", "terms": [{"name": "weight-clipping", "clip": 0.01}]},
        "optim": {"optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5, "d_steps": 5},
    },
    # Gulrajani et al. 2017, Algorithm 1: lambda 10, n_critic 5, Adam(1e-4, 0, 0.9); their critic has no batch norm
    # (the gradient penalty's requirement, see training/terms.py); layer norm as they suggest.
    "wgan-gp": {
        "description": "WGAN-GP, gradient penalty lambda 10 (Gulrajani et al. 2017); also 5 critic steps per G step, "
        "Adam(1e-4, betas 0, 0.9) for both, layer norm in the critic (defaults: width 64, batch 128)",
        "loss": {"name": "wgan-gp", "terms": [{"name": "gradient-penalty", "weight": 10.0}]},
        "optim": {"d_steps": 5, "lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.0, "beta2": 0.9},
        "model": {"d_norm": "layer"},
    },
    # Miyato et al. 2018: spectral norm in D with the hinge loss, Adam(2e-4, 0.5, 0.999) at n_dis 1 for DCGAN-sized models.
    "spectral-norm": {
        "description": "spectral norm in D (Miyato et al. 2018); also the hinge loss and no other norm in D "
        "(defaults: width 64, batch 128)",
        "model": {"spectral_norm": True, "d_norm": "none"},
        "loss": {"name": "hinge"},
    },
    "label-smoothing": {
        "description": "one-sided label smoothing, real targets 0.9 (Salimans et al. 2016); nothing else",
        "loss": {"label_smoothing": 0.1},
    },
    "instance-noise": {
        "description": "instance noise, std 0.1 annealed to 0 (Sonderby et al. 2017); nothing else",
        "loss": {"terms": [{"name": "instance-noise", "std": 0.1}]},
    },
    "feature-matching": {
        "description": "feature matching in G's loss, weight 1 (Salimans et al. 2016); nothing else",
        "loss": {"terms": [{"name": "feature-matching", "weight": 1.0}]},
    },
    "minibatch-discrimination": {
        "description": "minibatch discrimination, 50 kernels (Salimans et al. 2016); nothing else",
        "model": {"minibatch_discrimination": 50},
    },
    "minibatch-stddev": {
        "description": "minibatch standard deviation layer in D (Karras et al. 2018); nothing else",
        "model": {"minibatch_stddev": True},
    },
    "historical-averaging": {
        "description": "historical averaging, lambda 1e-4 for both players (Salimans et al. 2016); nothing else",
        "loss": {"terms": [{"name": "historical-averaging", "weight": 1e-4}]},
    },
    # Heusel et al. 2017: a faster discriminator than generator (here 4e-4 vs 1e-4).
    "ttur": {
        "description": "two time-scale update rule, lr 1e-4 for G and 4e-4 for D (Heusel et al. 2017); nothing else",
        "optim": {"lr_g": 1e-4, "lr_d": 4e-4},
    },
    "ema": {
        "description": "samples and evaluations from an EMA of G, decay 0.999 (Yazici et al. 2019); training unchanged",
        "callbacks": [{"name": "ema", "decay": 0.999}],
    },
    # Mescheder et al. 2018: the R1 penalty, gamma/2 E[||grad D(x)||^2] on real data, with the non-saturating
    # loss; gamma 10 as in their CelebA/LSUN experiments. Their discriminators have no batch norm (it would
    # mix the per-sample gradients the penalty is about), so neither does this one.
    "r1": {
        "description": "R1 penalty on real data, gamma 10 (Mescheder et al. 2018); also no norm in D "
        "(defaults: width 64, batch 128)",
        "loss": {"terms": [{"name": "r1", "gamma": 10.0}]},
        "model": {"d_norm": "none"},
    },
    "upsample-conv": {
        "description": "nearest-neighbour upsampling + convolution in G instead of transposed convolutions "
        "(Odena et al. 2016); nothing else",
        "model": {"g_upsample": "nearest"},
    },
    "cgan": {
        "description": "class-conditional G and D (Mirza & Osindero 2014); nothing else",
        "model": {"conditional": "cgan"},
    },
    "acgan": {
        "description": "auxiliary classifier in D, class loss weight 1 (Odena et al. 2017); nothing else",
        "model": {"conditional": "acgan"},
        "loss": {"terms": [{"name": "auxiliary-classifier", "weight": 1.0}]},
    },
    # Chen et al. 2016 (MNIST): 62 noise dims, one 10-way categorical and two continuous codes, lambda 1, and
    # the paper's faster generator, Adam lr 1e-3 for G vs 2e-4 for D. The learning rates matter: at 2e-4 for
    # both, the categorical code settled on style (17% code-to-digit accuracy after 3,000 steps); with the
    # paper's, it picks the digit (about 40-50% after 1,000-2,000 steps; see tests/test_conditional.py).
    "infogan": {
        "description": "InfoGAN codes (10-way + 2 continuous), lambda 1 (Chen et al. 2016); also 62 noise dims "
        "and lr 1e-3 for G, 2e-4 for D",
        "model": {"conditional": "infogan", "latent_dim": 62, "info_cat": 10, "info_cont": 2},
        "loss": {"terms": [{"name": "mutual-information", "weight": 1.0}]},
        "optim": {"lr_g": 1e-3, "lr_d": 2e-4},
    },
    # The main job's recipe (README quick start; issue 18), which `course-lib train` applies to MNIST when
    # neither --config nor --preset is given. Still DCGAN (Adam with betas (0.5, 0.999), non-saturating loss,
    # batch norm), departing from Radford et al. where a 2-core CPU and a few minutes need it: half the width,
    # upsample + conv in G (the largest gain in docs/results/mnist_improvements), batch 64, an EMA generator
    # for sampling, and a 5x larger learning rate (1e-3) for 1,000 steps: in docs/results/main_job/recipe_sweep
    # every variant levels off near 60% recognised digits, and lr 1e-3 gets there in two thirds of the steps
    # 2e-4 needs (and with every digit >= 5% of the samples).
    "mnist-main-job": {
        "description": "the main job's MNIST recipe (course-lib train's default for MNIST): width 32, "
        "upsample + conv, batch 64, lr 1e-3 for both, 1,000 steps, EMA 0.995",
        "model": {"width": 32, "g_upsample": "nearest"},
        "optim": {"batch_size": 64, "lr_g": 1e-3, "lr_d": 1e-3, "steps": 1000},
        "callbacks": [{"name": "ema", "decay": 0.995}],
    },
    # Chapter 15's StyleGAN ideas at MNIST scale (course_lib.nn.style, notebook 14): a 4-layer mapping network to a
    # 64-d W, modulated/demodulated convolutions (StyleGAN2), noise inputs, mixing regularisation with probability
    # 0.9 as in Karras et al. 2019; the main job's batch, EMA and DCGAN discriminator, but the DCGAN default learning
    # rate Adam(2e-4, 0.5, 0.999), not the main job's 1e-3. The synthesis layers need StyleGAN2's activation gain
    # (course_lib.nn.style.ACTIVATION_GAIN): without it this preset collapsed to one image (issue 19).
    "stylegan": {
        "description": "StyleGAN's generator (4-layer mapping to 64-d W, modulated convs, mixing 0.9); also "
        "width 32, batch 64, EMA 0.995, lr 2e-4",
        "model": {
            "arch": "style",
            "latent_dim": 64,
            "width": 32,
            "style": "modulated",
            "mapping_layers": 4,
            "style_mixing": 0.9,
        },
        "optim": {"batch_size": 64},
        "callbacks": [{"name": "ema", "decay": 0.995}],
    },
    # Karras et al. 2018's progressive growing, 7 -> 14 -> 28 (course_lib.nn.progressive): pixel norm, minibatch
    # stddev, each resolution trained `stable_steps` and faded in over `fade_steps` by the 'progressive' callback.
    "progressive": {
        "description": "progressive growing 7 -> 14 -> 28, 300 stable + 300 fade steps (Karras et al. 2018); also "
        "64-d latents, width 32, batch 64, EMA 0.995",
        "model": {"arch": "progressive", "latent_dim": 64, "width": 32},
        "optim": {"batch_size": 64},
        "callbacks": [{"name": "ema", "decay": 0.995}, {"name": "progressive", "stable_steps": 300, "fade_steps": 300}],
    },
    # Isola et al. 2017 (pix2pix): U-Net generator, conditional PatchGAN, L1 with lambda 100 plus the non-saturating
    # GAN loss, Adam(2e-4, 0.5, 0.999). The translation is the course's paired MNIST task (course_lib.data.translation).
    "pix2pix": {
        "description": "pix2pix: U-Net + conditional PatchGAN, L1 lambda 100 (Isola et al. 2017), on the paired "
        "MNIST super-resolution task; Adam 2e-4 (0.5, 0.999), width 64, batch 128",
        "data": {"task": "pix2pix", "translation": "superres"},
        "model": {"arch": "unet"},
        "loss": {"name": "non-saturating", "terms": [{"name": "l1", "weight": 100.0}]},
        "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999},
    },
    # Zhu et al. 2017 (CycleGAN): two U-Nets (their code's option beside the ResNet generator) and two PatchGANs with
    # instance norm, the least-squares GAN loss, cycle lambda 10, Adam(2e-4, 0.5, 0.999); unpaired MNIST domains:
    # digits and their stroke-thickened versions.
    "cyclegan": {
        "description": "CycleGAN: two U-Nets and PatchGANs, cycle lambda 10, least-squares loss (Zhu et al. 2017), "
        "on unpaired MNIST digits vs thickened digits; Adam 2e-4 (0.5, 0.999), width 64, batch 128",
        "data": {"task": "cyclegan", "translation": "thicken"},
        "model": {"arch": "unet"},
        "loss": {"name": "lsgan", "terms": [{"name": "cycle", "weight": 10.0}]},
        "optim": {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999},
    },
}

# The preset `course-lib train` applies on its own to MNIST (see course_lib.cli.commands.main_job_recipe).
MAIN_JOB_PRESET = "mnist-main-job"


def preset_settings(name: str) -> dict:
    """A preset's sections (without its description)."""
    return {k: v for k, v in PRESETS[name].items() if k != "description"}


def dotted_settings(sections: dict) -> list[str]:
    """A preset's settings as `section.field=value` strings (terms and callbacks as name(settings))."""
    out = []
    for section, values in sections.items():
        if section == "callbacks":
            out += [f"callbacks.{_entry(spec)}" for spec in values]
            continue
        for key, value in values.items():
            if key == "terms":
                out += [f"loss.terms.{_entry(spec)}" for spec in value]
            else:
                out.append(f"{section}.{key}={value}")
    return out


def _entry(spec: dict) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({settings})"


def describe_presets() -> str:
    """Every preset: its description, then what it sets (for `course-lib train --list-presets`)."""
    lines = []
    for name, preset in PRESETS.items():
        lines.append(f"{name}: {preset['description']}")
        settings = dotted_settings(preset_settings(name))
        lines.append("    sets " + ("; ".join(settings) if settings else "nothing"))
    return "\n".join(lines)
