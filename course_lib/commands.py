"""`course-lib train` and `course-lib sample`: the main job."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, CourseLibError


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train a GAN (DCGAN on the embedded MNIST by default)",
        description="Train a GAN and write samples, a loss plot, a log and checkpoints to --out. "
                    "Settings come from defaults, then --config FILE (JSON or YAML), then the flags.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    where = train.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="new run folder for samples, log, losses.png and checkpoints/")
    where.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument("--dataset", help="mnist (embedded subset; the full set with --data-root), mnist-full, "
                                         "fashion-mnist, celeba, folder [default: mnist]")
    train.add_argument("--data-root", help="folder holding the dataset (default: $COURSE_LIB_DATA)")
    train.add_argument("--arch", help="dcgan or mlp [default: dcgan]")
    train.add_argument("--steps", type=int, help="generator updates in total [default: 1000]")
    train.add_argument("--epochs", type=float, help="train for this many passes over the data instead of --steps")
    train.add_argument("--batch-size", type=int, help="minibatch size [default: 128]")
    train.add_argument("--seed", type=int, help="random seed [default: 0]")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps [default: auto]")
    train.add_argument("--loss", help="non-saturating, minimax, lsgan, hinge, wgan-clip or wgan-gp "
                                      "[default: non-saturating]")
    train.add_argument("--preset", help="published settings of one or more improvements, comma-separated, e.g. "
                                        "wgan-gp or ema,ttur (see course_lib.improvements.PRESETS); --config and "
                                        "the other flags override them")
    train.add_argument("--config", help="JSON or YAML file of settings (see course_lib.train.TrainConfig)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    sample = subparsers.add_parser(
        "sample", help="draw samples from a trained generator",
        description="Sample a generator checkpoint (a .pt file or a run folder). --out grid.png writes an image "
                    "grid; --out samples.npz writes the images as a uint8 array 'images' of shape (N, H, W, C).")
    sample.add_argument("checkpoint", nargs="?", help="checkpoint file or training run folder (or use --pretrained)")
    sample.add_argument("--pretrained", metavar="NAME", help="sample a generator shipped with course_lib instead "
                                                            "of a checkpoint: mnist-dcgan")
    sample.add_argument("--truncation", type=float, metavar="TAU", help="truncation trick: redraw latent components "
                                                                      "beyond TAU standard deviations (BigGAN)")
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", required=True, help="output file: .png (grid) or .npz (images)")
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    sample.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    sample.set_defaults(func=run_sample)


_FLAG_TO_SETTING = {"dataset": "dataset", "data_root": "data_root", "arch": "arch", "steps": "steps",
                    "batch_size": "batch_size", "seed": "seed", "device": "device", "loss": "loss"}


def run_train(args) -> int:
    from .train import Trainer, TrainConfig, read_settings, steps_for_epochs

    if args.resume:
        overrides = {k: getattr(args, k) for k in ("steps", "device") if getattr(args, k) is not None}
        ignored = [k for k in ("dataset", "data_root", "arch", "batch_size", "seed", "loss", "config", "epochs",
                               "preset")
                   if getattr(args, k) is not None]
        if ignored:
            raise ConfigError(f"--resume continues a run with its saved settings; drop {', '.join('--' + k.replace('_', '-') for k in ignored)}")
        trainer = Trainer.resume(args.resume, progress=not args.quiet, **overrides)
        print(f"resuming {args.resume} at step {trainer.step} of {trainer.config.steps}")
    else:
        out = Path(args.out)
        if (out / "checkpoints" / "last.pt").exists():
            raise ConfigError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")
        values = read_settings(args.config) if args.config else {}
        if args.preset:
            in_file = values.get("preset") or []
            values["preset"] = ([in_file] if isinstance(in_file, str) else list(in_file)) + [
                name.strip() for name in args.preset.split(",")]
        values.update({setting: getattr(args, flag) for flag, setting in _FLAG_TO_SETTING.items()
                       if getattr(args, flag) is not None})
        if args.dataset is None and args.data_root is None and "dataset" not in values:
            values["dataset"] = "mnist"
        if args.steps is not None and args.epochs is not None:
            raise ConfigError("give --steps or --epochs, not both")
        config = TrainConfig.from_dict(values)
        trainer = Trainer(config, out, progress=not args.quiet)
        if args.epochs is not None:
            if args.epochs <= 0:
                raise ConfigError(f"--epochs must be positive, got {args.epochs}")
            trainer.config.steps = steps_for_epochs(args.epochs, len(trainer.data), config.batch_size, config.d_steps)
        print(f"training {config.arch} on {trainer.data.source} for {trainer.config.steps} steps "
              f"on {trainer.device} -> {out}")
    trainer.train()
    out = trainer.out_dir
    print(json.dumps({"step": trainer.step, "seconds": round(trainer.elapsed, 1), **{k: round(v, 4) for k, v in trainer.history[-1].items() if k != "step"}}))
    print(f"wrote {out / 'samples.png'}, {out / 'losses.png'}, {out / 'log.jsonl'}, {out / 'checkpoints' / 'last.pt'}")
    return 0


def sample_images(generator: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """n samples from `generator` as uint8 (N, C, H, W), drawn in batches from a seeded N(0, I)."""
    from .data import to_uint8

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
    from .viz import save_image_grid

    out = Path(out)
    if out.suffix == ".png":
        return save_image_grid(images, out)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, images=images.permute(0, 2, 3, 1).numpy())
        os.replace(tmp, out)
        return out
    raise CourseLibError(f"--out must end in .png (a grid) or .npz (the images), got {out.name!r}")


def run_sample(args) -> int:
    from .checkpoint import load_generator
    from .env import pick_device

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    if Path(args.out).suffix not in (".png", ".npz"):
        raise ConfigError(f"--out must end in .png (a grid) or .npz (the images), got {args.out!r}")
    if (args.checkpoint is None) == (args.pretrained is None):
        raise ConfigError("give a CHECKPOINT (file or run folder) or --pretrained NAME, not both" if args.checkpoint
                          else "nothing to sample: give a CHECKPOINT (file or run folder) or --pretrained mnist-dcgan")
    if args.pretrained is not None:
        from .pretrained import pretrained_path

        checkpoint = pretrained_path(args.pretrained)
    else:
        checkpoint = args.checkpoint
    generator = load_generator(checkpoint, device=pick_device(args.device))
    if args.truncation is None:
        images = sample_images(generator, args.n, args.seed)
    else:
        from .latent import sample_latents
        from .pretrained import generate_uint8

        images = generate_uint8(generator, sample_latents(args.n, generator.latent_dim, tau=args.truncation, seed=args.seed))
    path = write_samples(images, args.out)
    print(f"wrote {args.n} samples to {path}")
    return 0
