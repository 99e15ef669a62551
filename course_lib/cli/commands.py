"""`course-lib train` and `course-lib sample`: the main job."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path

import torch

from course_lib.core.errors import ConfigError, CourseLibError
from course_lib.data import DATASETS
from course_lib.latent.pretrained import PRETRAINED
from course_lib.nn.losses import LOSSES
from course_lib.nn.models import ARCHITECTURES
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS


def names(registry) -> str:
    """The names a user may pass, as help texts and errors list them: from the registry they are checked against."""
    return ", ".join(registry)


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a GAN (DCGAN on the embedded MNIST by default)",
        description="Train a GAN and write samples, a loss plot, a log and checkpoints to --out. "
        "Settings come from the defaults, then --preset, then --config FILE (JSON or YAML, in sections: data, "
        "model, loss (+ terms), optim, callbacks, speed, run), then --set section.field=value, then the flags. "
        f"A DCGAN on MNIST without --config or --preset starts from the main job's recipe ({MAIN_JOB_PRESET!r}) "
        "instead of the defaults; any --preset replaces that recipe (fields it leaves alone take the defaults: "
        "width 64, batch 128). --list-presets says what each preset sets.",
        epilog="presets: " + "; ".join(f"{name}: {preset['description']}" for name, preset in PRESETS.items()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--list-presets", action="store_true", help="print every preset, what it sets, and exit")
    where = train.add_mutually_exclusive_group()
    where.add_argument("--out", help="new run folder for samples, log, losses.png and checkpoints/")
    where.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument(
        "--dataset",
        help=f"one of {names(DATASETS)} (mnist: the embedded subset, the full set with --data-root) [default: mnist]",
    )
    train.add_argument("--data-root", help="folder holding the dataset (default: $COURSE_LIB_DATA)")
    train.add_argument(
        "--arch",
        help=f"one of {names(ARCHITECTURES)}, or unet for image translation (the pix2pix and cyclegan presets) "
        "[default: dcgan]",
    )
    train.add_argument(
        "--steps",
        type=int,
        help="generator updates in total (optim.steps) [default: 1000; MNIST's main-job recipe: "
        f"{PRESETS[MAIN_JOB_PRESET]['optim']['steps']}]",
    )
    train.add_argument(
        "--epochs",
        type=float,
        help="train for this many passes over the data instead of --steps "
        "(prints the steps it means; warns when far below the recipe's)",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        help="minibatch size (optim.batch_size) [default: 128; MNIST's main-job recipe: "
        f"{PRESETS[MAIN_JOB_PRESET]['optim']['batch_size']}]",
    )
    train.add_argument("--lr-g", type=float, help="generator learning rate (optim.lr_g) [default: 2e-4]")
    train.add_argument("--lr-d", type=float, help="discriminator learning rate (optim.lr_d) [default: 2e-4]")
    train.add_argument(
        "--d-steps", type=int, help="discriminator steps per generator step (optim.d_steps) [default: 1]"
    )
    train.add_argument("--width", type=int, help="base channels of G and D (model.width) [default: 64]")
    train.add_argument("--seed", type=int, help="random seed [default: 0]")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps [default: auto]")
    train.add_argument("--loss", help=f"one of {names(LOSSES)} [default: non-saturating]")
    train.add_argument(
        "--preset",
        help="published settings of one or more improvements, comma-separated, e.g. wgan-gp or ema,ttur; one of "
        f"{names(PRESETS)} (course_lib.training.presets.PRESETS; README's table gives each one's time a step on a "
        "CPU); --config and the other flags override them",
    )
    train.add_argument("--config", help="JSON or YAML file of settings (see course_lib.training.TrainConfig)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one setting, e.g. --set optim.lr_g=1e-4 or --set loss.terms.r1.gamma=5 (repeatable; "
        "the value is read as YAML)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    sample = subparsers.add_parser(
        "sample",
        help="draw samples from a trained generator",
        description="Sample a generator checkpoint (a .pt file or a run folder). --out grid.png writes an image "
        "grid; --out samples.npz writes the images as a uint8 array 'images' of shape (N, H, W, C).",
    )
    sample.add_argument("checkpoint", nargs="?", help="checkpoint file or training run folder (or use --pretrained)")
    sample.add_argument(
        "--pretrained",
        metavar="NAME",
        help=f"sample a generator shipped with course_lib instead of a checkpoint: one of {names(PRETRAINED)}",
    )
    sample.add_argument(
        "--truncation",
        type=float,
        metavar="TAU",
        help="truncation trick: redraw latent components beyond TAU standard deviations (BigGAN)",
    )
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", required=True, help="output file: .png (grid) or .npz (images)")
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    sample.set_defaults(func=run_sample)


# The common flags and the settings they set (course_lib.training.config's sections).
_FLAG_TO_SETTING = {
    "dataset": "data.dataset",
    "data_root": "data.root",
    "arch": "model.arch",
    "width": "model.width",
    "steps": "optim.steps",
    "batch_size": "optim.batch_size",
    "lr_g": "optim.lr_g",
    "lr_d": "optim.lr_d",
    "d_steps": "optim.d_steps",
    "seed": "run.seed",
    "device": "run.device",
    "loss": "loss.name",
}


def main_job_recipe(args) -> str | None:
    """The preset `course-lib train` applies on its own: the main-job recipe when MNIST is trained with a
    DCGAN and neither --config nor --preset chose the settings (flags still override it)."""
    if args.config or args.preset or (args.dataset or "mnist") != "mnist" or (args.arch or "dcgan") != "dcgan":
        return None
    return MAIN_JOB_PRESET


def settings_by_name(values: dict) -> dict:
    """{field: value} of a settings mapping, flat (`width`) or in sections (`model: {width}`, `model.width`): what
    the CLI compares between presets, recipes and configs. The first of a repeated field name wins."""
    found: dict = {}
    for key, value in values.items():
        if isinstance(value, dict):
            for name, inner in settings_by_name(value).items():
                found.setdefault(name, inner)
        else:
            found.setdefault(str(key).rsplit(".", 1)[-1], value)
    return found


# What makes a step cost more or less: compared when a --preset replaces the main-job recipe.
SIZE_SETTINGS = ("width", "batch_size")


def replaced_recipe_warning(args, config) -> str | None:
    """A warning when --preset replaces the main-job recipe that `course-lib train` would have applied, and the
    run ends up larger than that recipe (a wider network, a larger batch: the preset's fields, or the defaults for
    the fields it leaves alone), so a newcomer is not surprised by a run many times slower."""
    recipe = main_job_recipe(argparse.Namespace(**{**vars(args), "preset": None}))
    if not args.preset or recipe is None:
        return None
    ours, theirs = settings_by_name(config.to_dict()), settings_by_name(PRESETS[recipe])
    changed = [name for name in SIZE_SETTINGS if name in theirs and ours.get(name) != theirs[name]]
    if not changed:
        return None
    return (
        f"note: --preset {args.preset} replaces the main job's recipe ({recipe}), so this run has "
        + " and ".join(f"{name} {ours.get(name)}" for name in changed)
        + " where the recipe has "
        + " and ".join(f"{theirs[name]}" for name in changed)
        + ": each step costs more (README: time a step per preset); set "
        + ", ".join(f"{name} {theirs[name]}" for name in changed)
        + " in --config (or --batch-size) to keep the recipe's size"
    )


def describe_epochs(
    epochs: float, steps: int, recipe_steps: int, n_images: int, batch_size: int, d_steps: int = 1
) -> tuple[str, str | None]:
    """What `--epochs N` means in generator steps, and a warning when that is far below (under half of)
    the steps the chosen settings train for."""
    per_epoch = n_images // batch_size / d_steps
    info = (
        f"--epochs {epochs:g} = {steps:,} generator steps ({n_images:,} images, batch {batch_size}"
        + (f", {d_steps} discriminator steps per generator step" if d_steps > 1 else "")
        + ")"
    )
    if steps >= recipe_steps / 2:
        return info, None
    needed = math.ceil(10 * recipe_steps / per_epoch) / 10
    return info, (
        f"warning: {steps:,} steps is far below the {recipe_steps:,} these settings train for; expect "
        f"noise or blurry digits. Use --epochs {needed:g} (or --steps {recipe_steps}) for the full recipe."
    )


def run_train(args) -> int:
    """`course-lib train`; under torchrun only rank 0 prints (every rank trains, and errors go to stderr on all)."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _run_train(args)
    return _run_train(args)


def _run_train(args) -> int:
    from course_lib.training import TrainConfig, Trainer, legacy, read_settings, steps_for_epochs
    from course_lib.training.config import merge_settings, parse_override
    from course_lib.training.presets import describe_presets

    if args.list_presets:
        print(describe_presets())
        return 0
    if not args.out and not args.resume:
        raise ConfigError("give --out DIR for a new run or --resume DIR to continue one (or --list-presets)")
    if args.resume:
        overrides = {k: getattr(args, k) for k in ("steps", "device") if getattr(args, k) is not None}
        ignored = [
            k
            for k in (*_FLAG_TO_SETTING, "config", "epochs", "preset")
            if k not in ("steps", "device") and getattr(args, k) is not None
        ] + (["set"] if args.overrides else [])
        if ignored:
            raise ConfigError(
                f"--resume continues a run with its saved settings; drop {', '.join('--' + k.replace('_', '-') for k in ignored)}"
            )
        trainer = Trainer.resume(args.resume, progress=not args.quiet, **overrides)
        total = trainer.config.optim.steps
        if total < trainer.step:
            # Checked before train() writes anything: the run's samples, log and checkpoint stay as they are.
            raise ConfigError(
                f"{args.resume} has {trainer.step:,} steps already; --steps {total} is fewer (it is the total "
                f"to reach): give more than {trainer.step} to train longer, or leave --steps out"
            )
        if total == trainer.step:
            print(
                f"{args.resume} is at step {trainer.step:,} of {total:,}: nothing to train, nothing written "
                f"(give --steps more than {trainer.step} to train longer)"
            )
            return 0
        print(f"resuming {args.resume} at step {trainer.step} of {trainer.config.optim.steps}")
    else:
        out = Path(args.out)
        if (out / "checkpoints" / "last.pt").exists():
            raise ConfigError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
        values = read_settings(args.config) if args.config else {}
        source = args.config or "config"
        if args.preset:
            in_file = values.get("preset") or []
            values["preset"] = ([in_file] if isinstance(in_file, str) else list(in_file)) + [
                name.strip() for name in args.preset.split(",")
            ]
        recipe = main_job_recipe(args)
        if recipe:
            values["preset"] = [recipe]  # under the flags: from_dict applies presets first
        # --set and the flags, as dotted paths over the file (an old flat file is translated first, once).
        flags = dict(parse_override(text) for text in args.overrides)
        flags.update(
            {path: getattr(args, flag) for flag, path in _FLAG_TO_SETTING.items() if getattr(args, flag) is not None}
        )
        if args.steps is not None and args.epochs is not None:
            raise ConfigError("give --steps or --epochs, not both")
        if args.epochs is not None and args.epochs <= 0:
            raise ConfigError(f"--epochs must be positive, got {args.epochs}")
        if flags:
            if legacy.is_flat(values):  # an old flat file: into sections first, so the dotted paths apply
                values = TrainConfig.from_dict(values, source=source).to_dict()
            values = merge_settings(values, flags)
        config = TrainConfig.from_dict(values, source=source)
        trainer = Trainer(config, out, progress=not args.quiet)
        warning = replaced_recipe_warning(args, config)
        if warning:
            print(warning, file=sys.stderr)
        if recipe:
            from course_lib.training.presets import dotted_settings, preset_settings

            print(
                f"recipe {recipe!r} (course_lib.training.presets.PRESETS; --config or --preset replace it): "
                + ", ".join(dotted_settings(preset_settings(recipe)))
            )
        if args.epochs is not None:
            optim = config.optim
            recipe_steps = optim.steps
            optim.steps = steps_for_epochs(args.epochs, len(trainer.data), optim.batch_size, optim.d_steps)
            info, warning = describe_epochs(
                args.epochs, optim.steps, recipe_steps, len(trainer.data), optim.batch_size, optim.d_steps
            )
            print(info)
            if warning:
                print(warning, file=sys.stderr)
        print(
            f"training {config.model.arch} on {trainer.data.source} for {config.optim.steps} steps "
            f"on {trainer.device} -> {out}"
        )
    trainer.train()
    out = trainer.out_dir
    print(
        json.dumps(
            {
                "step": trainer.step,
                "seconds": round(trainer.elapsed, 1),
                **{k: round(v, 4) for k, v in trainer.history[-1].items() if k != "step"},
            }
        )
    )
    print(f"wrote {out / 'samples.png'}, {out / 'losses.png'}, {out / 'log.jsonl'}, {out / 'checkpoints' / 'last.pt'}")
    return 0


def sample_images(generator: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """n samples from `generator` as uint8 (N, C, H, W), drawn in batches from a seeded N(0, I)."""
    from course_lib.core.images import to_uint8

    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), generator.latent_dim, generator=rng)
            out.append(to_uint8(generator(z.to(device))).cpu())
    return torch.cat(out)


def write_samples(images: torch.Tensor, out: str | os.PathLike) -> Path:
    """Write uint8 (N, C, H, W) images as a PNG grid or an .npz with `images` (N, H, W, C)."""
    from course_lib.core.io import save_npz_atomic
    from course_lib.core.plots import save_image_grid

    out = Path(out)
    if out.suffix == ".png":
        return save_image_grid(images, out)
    if out.suffix == ".npz":
        return save_npz_atomic(out, images=images.permute(0, 2, 3, 1).numpy())
    raise CourseLibError(f"--out must end in .png (a grid) or .npz (the images), got {out.name!r}")


def run_sample(args) -> int:
    from course_lib.core.runtime import pick_device
    from course_lib.training.checkpoint import load_generator

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    if Path(args.out).suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (the images), got {args.out!r}")
    if (args.checkpoint is None) == (args.pretrained is None):
        raise ConfigError(
            "give a CHECKPOINT (file or run folder) or --pretrained NAME, not both"
            if args.checkpoint
            else "nothing to sample: give a CHECKPOINT (file or run folder) or --pretrained NAME, one of "
            + names(PRETRAINED)
        )
    if args.pretrained is not None:
        from course_lib.latent.pretrained import pretrained_path

        checkpoint = pretrained_path(args.pretrained)
    else:
        checkpoint = args.checkpoint
    generator = load_generator(checkpoint, device=pick_device(args.device))
    if args.truncation is None:
        images = sample_images(generator, args.n, args.seed)
    else:
        from course_lib.latent import sample_latents
        from course_lib.latent.pretrained import generate_uint8

        images = generate_uint8(
            generator, sample_latents(args.n, generator.latent_dim, tau=args.truncation, seed=args.seed)
        )
    path = write_samples(images, args.out)
    print(f"wrote {args.n} samples to {path}")
    return 0
