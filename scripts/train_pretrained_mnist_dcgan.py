"""Train the MNIST DCGAN shipped as course_lib/assets/mnist_dcgan.pt (`course_lib.latent.pretrained`).

It is the generator the latent-space sliders of notebook 10 use the moment a student opens it. The
script trains with course_lib's own Trainer on the full 60k MNIST training set (the embedded 10k
subset when no data root is found), keeps the run folder so an interrupted run resumes exactly, then
writes only the generator's weights with its config, the training settings, the data's sha256 and
an evaluation against the full MNIST test set (classifier-feature FID, precision/recall, and how
often the shipped MNIST classifier recognises the samples).

    OMP_NUM_THREADS=1 python scripts/train_pretrained_mnist_dcgan.py [--data-root PATH] [--steps 8000]

The recipe is the main job's (`mnist-main-job` in course_lib.training.presets: DCGAN-28, width 32,
upsample + conv in G, batch 64, Adam 2e-4, betas (0.5, 0.999)) trained longer on the full set, with an
EMA generator of decay 0.999; the EMA generator is the one shipped. CPU: roughly half an hour on one
free core for 8,000 steps (about 8.5 epochs); the shipped file records the time it really took.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from course_lib.core.runtime import data_root, shared_data_dir
from course_lib.data.datasets import _IDX_FILES
from course_lib.latent.pretrained import PRETRAINED, evaluate_generator
from course_lib.training import TrainConfig, Trainer
from course_lib.training import checkpoint as ckpt_io
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS

REPO = Path(__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_fingerprint(root: Path | None) -> dict:
    """sha256 of the training IDX files (or of the embedded subset), so the data source is pinned."""
    if root is None:
        from course_lib.data import EMBEDDED_MNIST

        return {EMBEDDED_MNIST.name: sha256(EMBEDDED_MNIST)}
    raw = data_root(root) / "MNIST" / "raw"
    return {name: sha256(raw / name) for name in _IDX_FILES["train"] if (raw / name).is_file()}


def export(trainer: Trainer, out: Path, meta: dict) -> Path:
    """The generator alone (its EMA copy when the run kept one), in the checkpoint format
    `course_lib.training.checkpoint.load_generator` reads."""
    state = trainer.state_dict()
    config = copy.deepcopy(state["config"])
    config["data"]["root"] = None  # no machine paths in the shipped file
    asset = {
        "format": state["format"],
        "config": config,
        "channels": state["channels"],  # what load_generator builds the model for, beside the config
        "data_source": meta["data"],
        "step": state["step"],
        "generator": {k: v.detach().cpu().clone() for k, v in trainer.generator_for_eval().state_dict().items()},
        "discriminator": None,  # not shipped: the file is for sampling, not for resuming training
        "pretrained": meta,
    }
    return ckpt_io.save_atomic(asset, out)


TAUS = (None, 2.0, 1.0, 0.5, 0.25, 0.1)
TAU_RESAMPLES = 200  # bootstrap resamples of the rarest digit's share
# How each metric's cell of the tau table prints: key, digits, scale, unit.
TAU_CELLS = [
    ("mean_norm", 2, 1.0, ""),
    ("mean_pixel", 3, 1.0, ""),
    ("recognised_0.9", 1, 100.0, "%"),
    ("rarest_digit", 1, 100.0, "%"),
]


def tau_sweep(generator: torch.nn.Module, n: int = 1000, seed: int = 123) -> list[dict]:
    """How truncation changes the samples: BigGAN's resampling (every component of z redrawn into
    [-tau, tau], so ||z|| shrinks with tau) against truncating only the direction and keeping the radius
    (`course_lib.latent.truncated_on_shell`). Per row: the mean latent length, the samples' mean pixel
    value in [0, 1] (fading shows as it falls), the fraction the MNIST classifier recognises at p >= 0.9
    and its rarest predicted digit, each with its 95% interval over the n samples (`intervals`: t intervals of
    the two means, Wilson for the fraction, a percentile bootstrap of the rarest digit's share)."""
    import numpy as np

    from course_lib.latent import sample_latents, truncated_on_shell
    from course_lib.latent.pretrained import classify_digits, generate_uint8
    from course_lib.metrics.uncertainty import binomial_interval, bootstrap_interval, interval_record, mean_interval

    rows = []
    for tau in TAUS:
        methods = (
            {"none": sample_latents(n, generator.latent_dim, seed=seed)}
            if tau is None
            else {
                "resample": sample_latents(n, generator.latent_dim, tau=tau, seed=seed),
                "keep_radius": truncated_on_shell(n, generator.latent_dim, tau, seed=seed),
            }
        )
        for method, z in methods.items():
            images = generate_uint8(generator, z)
            labels, confidence = classify_digits(images)
            histogram = torch.bincount(labels, minlength=10)
            predicted = labels.numpy()

            def rarest_share(index, predicted=predicted):
                return np.bincount(predicted[index], minlength=10).min() / len(index)

            intervals = {
                "mean_norm": mean_interval(z.norm(dim=1).double().numpy()),
                "mean_pixel": mean_interval((images.double() / 255).flatten(1).mean(1).numpy()),
                "recognised_0.9": binomial_interval(int((confidence >= 0.9).sum()), n),
                "rarest_digit": bootstrap_interval(rarest_share, n, resamples=TAU_RESAMPLES, seed=seed),
            }
            rows.append(
                {
                    "tau": tau,
                    "method": method,
                    "n": n,
                    "mean_norm": float(z.norm(dim=1).double().mean()),
                    "mean_pixel": float(images.double().mean() / 255),
                    "recognised_0.9": float((confidence >= 0.9).double().mean()),
                    "rarest_digit": float(histogram.min()) / n,
                    "digit_histogram": histogram.tolist(),
                    "intervals": {key: interval_record(interval) for key, interval in intervals.items()},
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def write_tau_report(rows: list[dict], asset: Path, out_dir: Path) -> None:
    from course_lib.core.io import write_json_atomic, write_text_atomic

    report = {
        "asset": asset.name,
        "sha256": sha256(asset),
        "n": rows[0]["n"],
        "interval": "95% intervals over the samples of each row: t interval for the mean latent length and the "
        f"mean pixel (over the per-sample values), Wilson for the recognised fraction, percentile bootstrap "
        f"({TAU_RESAMPLES} resamples) for the rarest digit's share",
        "rows": rows,
    }
    write_json_atomic(out_dir / "tau_sweep.json", report)
    write_text_atomic(out_dir / "tau_sweep.md", render_tau_markdown(report))


def render_tau_markdown(report: dict) -> str:
    """tau_sweep.md from what tau_sweep.json holds."""
    from course_lib.metrics.uncertainty import Interval, interval_cell

    rows = report["rows"]
    lines = [
        "# Truncation of the shipped `mnist-dcgan`: resampling vs keeping the radius",
        "",
        f"Generator: `{report['asset']}` (sha256 `{report['sha256']}`); n = {report['n']:,} samples per row, "
        "latents from seed 123; scored by the shipped MNIST classifier. Made by "
        "`python scripts/train_pretrained_mnist_dcgan.py --tau-sweep docs/results/mnist_dcgan`.",
        "",
        f"Each cell: value and its {report['interval']} (`± h` when the interval is symmetric, else `[low, high]`). "
        "One generator and one latent seed: the sampling noise only.",
        "",
        "| tau | method | mean ‖z‖ | mean pixel | recognised p >= 0.9 | rarest digit |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        tau = "none" if r["tau"] is None else f"{r['tau']:g}"
        cells = [
            interval_cell(r[key], Interval(**r["intervals"][key]), digits, scale, unit)
            for key, digits, scale, unit in TAU_CELLS
        ]
        lines.append(f"| {tau} | {r['method']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`resample`: BigGAN's truncation (`sample_latents(tau=...)`); `keep_radius`: "
        "`course_lib.latent.truncated_on_shell` (the direction truncated, the length of an untruncated draw).",
        "A mean pixel near 0 means blank images; the classifier calls a blank image a 1 with p >= 0.9, so the "
        "recognised fraction alone rewards fading: read it together with the rarest digit.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        default=None,
        help="folder containing MNIST/raw (default: ../shared/data when present, else the embedded subset)",
    )
    parser.add_argument(
        "--run-dir",
        default=str(REPO / "runs" / "pretrained_mnist_dcgan"),
        help="training run folder (resumed when it holds a checkpoint)",
    )
    parser.add_argument("--out", default=str(PRETRAINED["mnist-dcgan"].path), help="where to write the asset")
    parser.add_argument("--steps", type=int, default=8000)
    recipe = PRESETS[MAIN_JOB_PRESET]
    parser.add_argument("--width", type=int, default=recipe["model"]["width"])
    parser.add_argument("--batch-size", type=int, default=recipe["optim"]["batch_size"])
    parser.add_argument("--g-upsample", default=recipe["model"]["g_upsample"], choices=("transposed", "nearest"))
    parser.add_argument("--ema", type=float, default=0.999, help="decay of the shipped EMA generator (0: no EMA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-samples", type=int, default=10_000, help="samples for FID/precision/recall")
    parser.add_argument(
        "--min-recognised",
        type=float,
        default=0.85,
        help="refuse to write the asset when a smaller fraction of samples is recognised "
        "(MNIST classifier probability >= 0.5)",
    )
    parser.add_argument(
        "--tau-sweep",
        metavar="DIR",
        help="no training: measure truncation of the asset at --out (both methods) and write DIR/tau_sweep.md + .json",
    )
    args = parser.parse_args(argv)

    if args.tau_sweep:
        from course_lib.training.checkpoint import load_generator

        asset = Path(args.out)
        write_tau_report(tau_sweep(load_generator(asset)), asset, Path(args.tau_sweep))
        return 0

    root = args.data_root or shared_data_dir()
    config = TrainConfig(
        data={"dataset": "mnist-full" if root else "mnist", "root": str(root) if root else None},
        model={"arch": "dcgan", "latent_dim": 100, "width": args.width, "g_upsample": args.g_upsample},
        optim={"batch_size": args.batch_size, "steps": args.steps},
        callbacks=[{"name": "ema", "decay": args.ema}] if args.ema else [],
        run={"seed": args.seed, "device": "cpu", "log_every": 50, "sample_every": 500, "checkpoint_every": 250},
    )
    run_dir = Path(args.run_dir)
    if (run_dir / "checkpoints" / "last.pt").is_file():
        trainer = Trainer.resume(run_dir, steps=args.steps)
        print(f"resuming {run_dir} at step {trainer.step}", flush=True)
    else:
        trainer = Trainer(config, run_dir)
    print(f"training on {trainer.data.source} for {trainer.config.optim.steps} steps -> {run_dir}", flush=True)
    trainer.train()

    started = time.time()
    evaluation = evaluate_generator(
        trainer.generator_for_eval().eval(), n_samples=args.eval_samples, seed=args.seed + 123, data_root=root
    )  # the full 10k test digits when the data root has them
    if root:  # keep this machine's paths out of the shipped file
        evaluation["reference"] = evaluation["reference"].replace(str(root), "<data root>")
    print(json.dumps(evaluation, indent=2), flush=True)
    if evaluation["recognised_0.5"] < args.min_recognised:
        print(
            f"only {evaluation['recognised_0.5']:.1%} of samples recognised (< {args.min_recognised:.0%}); "
            "not writing the asset: train longer",
            file=sys.stderr,
        )
        return 1
    meta = {
        "name": "mnist-dcgan",
        "script": "scripts/train_pretrained_mnist_dcgan.py",
        "arguments": {k: v for k, v in vars(args).items() if k not in ("run_dir", "out", "data_root")},
        "data": trainer.data.source.replace(str(root), "<data root>") if root else trainer.data.source,
        "data_sha256": data_fingerprint(root),
        "train_seconds": round(trainer.elapsed, 1),
        "eval_seconds": round(time.time() - started, 1),
        "torch": str(torch.__version__),  # a plain str: TorchVersion does not load with weights_only
        "evaluation": evaluation,
    }
    path = export(trainer, Path(args.out), meta)
    print(f"wrote {path} ({path.stat().st_size:,} bytes, sha256 {sha256(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
