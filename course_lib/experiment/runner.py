"""Experiments: train a list of variants over several seeds, evaluate them, and write one report.

    course-lib experiment configs/mnist_improvements.yaml --out runs/improvements

A config (YAML or JSON) names the shared settings, the seeds, the evaluation and the variants:

    name: mnist-improvements
    base: {dataset: mnist, width: 32, batch_size: 64, steps: 1500}   # TrainConfig fields
    seeds: [0, 1]
    eval: {every: 500, n_samples: 2000, reference: "mnist:test", extractor: mnist}
    variants:
      - name: baseline
      - {name: lsgan, preset: lsgan}              # presets: course_lib.training.presets.PRESETS
      - {name: ema, ema: 0.999}

Each (variant, seed) is an ordinary training run in DIR/runs/<variant>/seed<k>/. It is evaluated
every `eval.every` steps and at the end, with the EMA generator when the run keeps one, on
`n_samples` samples against the reference images: IS (mean and std over 10 splits), FID, KID,
precision and recall, all in the same feature space (`eval.extractor`: the Inception network when
its weights are found, else the MNIST classifier; the report says which, since the two scales are
not comparable). A finished run leaves result.json and is never redone; an interrupted one resumes
from its last checkpoint (evaluations already done are kept in evals.json). DIR/report.json and
DIR/report.md give, per variant, the mean and standard deviation over seeds of every number, the
training wall time and the compute spent in hooks, with sample grids, metric curves and loss curves.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.core.errors import ConfigError
from course_lib.training import Trainer, TrainConfig

METRIC_KEYS = ("is", "is_std", "fid", "kid", "precision", "recall")
BETTER = {"is": "higher", "fid": "lower", "kid": "lower", "precision": "higher", "recall": "higher"}


@dataclass
class EvalSettings:
    every: int = 0  # evaluate every this many steps (0: only at the end)
    n_samples: int = 2000
    reference: str | None = None  # default: the dataset's test split (or the dataset itself)
    n_reference: int | None = 10_000
    extractor: str = "auto"  # auto | inception | mnist
    seed: int = 12345  # noise seed of the evaluation samples (the same for every run)
    kid_subset: int = 1000


@dataclass
class ExperimentConfig:
    name: str
    base: dict
    seeds: list[int]
    variants: list[dict]
    eval: EvalSettings = field(default_factory=EvalSettings)
    description: str = ""

    def train_config(self, variant: dict, seed: int) -> TrainConfig:
        """The full settings of one run: base, then the variant's preset and settings, then the seed."""
        settings = {k: v for k, v in variant.items() if k != "name"}
        base = dict(self.base)
        if "preset" in settings and "preset" in base:
            raise ConfigError("give presets either in base or in the variants, not both")
        try:
            return TrainConfig.from_dict({**base, **settings, "seed": seed})
        except ConfigError as exc:
            raise ConfigError(f"variant {variant['name']!r}: {exc}") from exc

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "base": self.base, "seeds": self.seeds,
                "eval": vars(self.eval), "variants": self.variants}


def load_experiment(source: str | os.PathLike | dict) -> ExperimentConfig:
    """Read and validate an experiment config (file path or mapping). Every run's settings are checked now,
    so a typo in the last variant fails before hours of training, not after."""
    if isinstance(source, dict):
        values, where = dict(source), "experiment config"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"experiment config {path} not found")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(path.read_text()) or {}
            else:
                values = json.loads(path.read_text())
        except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
            raise ConfigError(f"cannot parse {path}: {exc}") from exc
        where = str(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping with base, seeds, eval and variants")
    known = {"name", "description", "base", "seeds", "eval", "variants"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    variants = values.get("variants") or []
    if not variants or not all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in variants):
        raise ConfigError(f"{where}: 'variants' must be a non-empty list of mappings, each with a 'name'")
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: variant names must be unique, got {names}")
    bad = [n for n in names if not n or any(c in n for c in "/\\:") or n.startswith(".")]
    if bad:
        raise ConfigError(f"{where}: variant names become folder names; these are not usable: {bad}")
    seeds = values.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{where}: 'seeds' must be a list of integers, got {seeds!r}")
    eval_values = values.get("eval") or {}
    try:
        settings = EvalSettings(**eval_values)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad 'eval' settings ({exc}); known: {', '.join(vars(EvalSettings()))}") from exc
    if settings.extractor not in ("auto", "inception", "mnist"):
        raise ConfigError(f"{where}: eval.extractor must be auto, inception or mnist, got {settings.extractor!r}")
    if settings.n_samples < 2 or settings.every < 0:
        raise ConfigError(f"{where}: eval.n_samples must be >= 2 and eval.every >= 0")
    config = ExperimentConfig(values.get("name") or Path(where).stem, dict(values.get("base") or {}), list(seeds),
                              variants, settings, values.get("description", ""))
    for variant in variants:
        config.train_config(variant, seeds[0])
    return config


# --------------------------------------------------------------------------------- evaluation
def choose_extractor(name: str) -> str:
    """'auto' means Inception when its weights can be found offline, else the MNIST classifier."""
    if name != "auto":
        return name
    from course_lib.metrics import WeightsNotFound, find_inception_weights

    try:
        find_inception_weights()
        return "inception"
    except WeightsNotFound:
        return "mnist"


def default_reference(base: dict) -> str:
    dataset = base.get("dataset", "mnist")
    return f"{dataset}:test" if dataset in ("mnist", "mnist-full", "fashion-mnist") else dataset


class Evaluator:
    """Scores generators against one reference set, extracting the reference features once."""

    def __init__(self, settings: EvalSettings, base: dict, device="auto", progress: bool = False):
        from course_lib.metrics import extract_features, get_extractor

        self.settings, self.progress = settings, progress
        self.extractor_name = choose_extractor(settings.extractor)
        self.extractor = get_extractor(self.extractor_name, device)
        self.reference = settings.reference or default_reference(base)
        self.reference_features = extract_features(
            self.reference, self.extractor, data_root=base.get("data_root"), image_size=base.get("image_size"),
            limit=settings.n_reference, progress=progress)
        self.label = self.reference_features.extractor_label

    def __call__(self, generator: torch.nn.Module) -> dict[str, float | None]:
        """Scores of `n_samples` samples of a generator, drawn from the fixed evaluation noise."""
        from course_lib.metrics import extract_features

        s = self.settings
        return self.score_images(extract_features(generator, self.extractor, n_samples=s.n_samples, seed=s.seed,
                                                  progress=self.progress))

    def real_data_row(self, base: dict) -> dict[str, float | None]:
        """The same numbers for real training images against the reference: what a perfect generator scores."""
        from course_lib.data import load_dataset
        from course_lib.metrics import extract_features

        dataset = base.get("dataset", "mnist")
        data = load_dataset(dataset, base.get("data_root"), "train", base.get("image_size"),
                            limit=self.settings.n_samples)
        return self.score_images(extract_features(data.images, self.extractor, progress=self.progress))

    def score_images(self, feats) -> dict[str, float | None]:
        from course_lib.metrics import (
            fid,
            inception_score_from_logits,
            kid_from_features,
            precision_recall_from_features,
        )

        ref, s = self.reference_features, self.settings
        out: dict[str, float | None] = {"is": None, "is_std": None}
        if feats.logits is not None:
            out["is"], out["is_std"] = inception_score_from_logits(feats.logits)
        out["fid"] = float(fid(feats, ref, extractor=self.extractor_name))
        subset = min(s.kid_subset, len(feats), len(ref))
        out["kid"] = kid_from_features(feats.features, ref.features, subsets=50, subset_size=subset, seed=s.seed)[0]
        out["precision"], out["recall"] = precision_recall_from_features(feats.features, ref.features)
        return out


# ------------------------------------------------------------------------------------ running
def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _without_device(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k != "device"}


def _eval_steps(total: int, every: int) -> list[int]:
    steps = list(range(every, total, every)) if every else []
    return steps + [total]


def run_one(config: ExperimentConfig, variant: dict, seed: int, run_dir: Path, evaluator: Evaluator,
            data=None, progress: bool = True, device: str | None = None) -> dict:
    """Train and evaluate one (variant, seed), resuming where an earlier attempt stopped."""
    train_config = config.train_config(variant, seed)
    if device is not None:
        train_config.device = device
    settings = train_config.to_dict()
    result_path, evals_path = run_dir / "result.json", run_dir / "evals.json"
    if result_path.is_file():
        done = json.loads(result_path.read_text())
        if _without_device(done.get("settings", {})) != _without_device(settings):
            raise ConfigError(f"{run_dir} holds a finished run with other settings than the config now asks for; "
                              "use another --out folder or delete that run folder")
        return done
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if checkpoint.is_file():
        trainer = Trainer.resume(run_dir, data=data, progress=progress, device=train_config.device)
        resumed = trainer.config.to_dict()
        if settings["image_size"] is None:  # the checkpoint records the dataset's own size
            resumed["image_size"] = None
        if _without_device(resumed) != _without_device(settings):
            raise ConfigError(f"{run_dir} holds an unfinished run with other settings than the config now asks for; "
                              "use another --out folder or delete that run folder")
    else:
        trainer = Trainer(train_config, run_dir, data=data, progress=progress)
    evals = json.loads(evals_path.read_text()) if evals_path.is_file() else []
    evals = [e for e in evals if e["step"] <= trainer.step]
    eval_seconds = sum(e["seconds"] for e in evals)
    for target in _eval_steps(train_config.steps, config.eval.every):
        if any(e["step"] == target for e in evals):
            continue
        if trainer.step < target:
            trainer.train(target)
        started = time.perf_counter()
        scores = evaluator(trainer.generator_for_eval())
        seconds = time.perf_counter() - started
        eval_seconds += seconds
        evals.append({"step": target, **scores, "seconds": seconds})
        _write_json(evals_path, evals)
    hooks = trainer.hooks
    result = {
        "variant": variant["name"], "seed": seed, "settings": settings, "steps": trainer.step,
        "train_seconds": trainer.elapsed, "eval_seconds": eval_seconds,
        "hook_seconds": float(sum(getattr(h, "seconds", 0.0) for h in hooks)),
        "hooks": [h.summary() if hasattr(h, "summary") else {"hook": type(h).__name__} for h in hooks],
        "final": {k: evals[-1][k] for k in METRIC_KEYS},
        "evals": evals,
    }
    _write_json(result_path, result)
    return result


def run_experiment(config: ExperimentConfig | str | os.PathLike | dict, out_dir: str | os.PathLike,
                   progress: bool = True, device: str | None = None, only: list[str] | None = None) -> dict | None:
    """Run every (variant, seed) not yet finished in out_dir, then write report.json and report.md.

    `only`: run just these variants (e.g. to split an experiment over several processes or machines
    sharing out_dir); the report is written once every run of the config has finished, and None is
    returned until then.
    """
    from course_lib.data import load_dataset

    if not isinstance(config, ExperimentConfig):
        config = load_experiment(config)
    names = [v["name"] for v in config.variants]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ConfigError(f"no variant(s) {', '.join(unknown)} in {config.name}; variants: {', '.join(names)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "experiment.json", config.to_dict())
    evaluator = Evaluator(config.eval, config.base, device=device or config.base.get("device", "auto"),
                          progress=False)
    datasets: dict[tuple, Any] = {}
    results = []
    by_name = {v["name"]: v for v in config.variants}
    order = [by_name[name] for name in only] if only else config.variants  # --only also sets the order
    todo = [(v, s) for v in order for s in config.seeds]
    for i, (variant, seed) in enumerate(todo, start=1):
        tc = config.train_config(variant, seed)
        key = (tc.dataset, tc.data_root, tc.image_size, tc.limit)
        if key not in datasets:
            datasets[key] = load_dataset(tc.dataset, tc.data_root, "train", tc.image_size, limit=tc.limit)
        run_dir = out / "runs" / variant["name"] / f"seed{seed}"
        state = "done" if (run_dir / "result.json").is_file() else "resuming" if run_dir.is_dir() else "training"
        print(f"[{i}/{len(todo)}] {variant['name']} seed {seed}: {state} ({tc.steps} steps)", flush=True)
        results.append(run_one(config, variant, seed, run_dir, evaluator, datasets[key], progress, device))
    if only:
        results = []
        for variant, seed in ((v, s) for v in config.variants for s in config.seeds):
            path = out / "runs" / variant["name"] / f"seed{seed}" / "result.json"
            if not path.is_file():
                print(f"the report waits for the other variants ({variant['name']} seed {seed} is not finished)")
                return None
            results.append(json.loads(path.read_text()))
    real = evaluator.real_data_row(config.base)
    report = summarise(config, results, evaluator.label, evaluator.reference, real)
    _write_json(out / "report.json", report)
    write_figures(out, config, results)
    _write_text(out / "report.md", render_markdown(report, out))
    return report


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------ report
def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(config: ExperimentConfig, results: list[dict], extractor_label: str, reference: str,
              real: dict | None = None) -> dict:
    """Per-variant means and spreads over seeds, with the comparison against the first variant (the baseline)."""
    rows = []
    for variant in config.variants:
        runs = [r for r in results if r["variant"] == variant["name"]]
        row: dict[str, Any] = {"variant": variant["name"], "seeds": [r["seed"] for r in runs],
                               "settings": {k: v for k, v in variant.items() if k != "name"}}
        for key in METRIC_KEYS:
            row[key], row[f"{key}_spread"] = _mean_std([r["final"][key] for r in runs])
        for key in ("steps", "train_seconds", "eval_seconds", "hook_seconds"):
            row[key], row[f"{key}_spread"] = _mean_std([r[key] for r in runs])
        row["per_seed"] = [{"seed": r["seed"], **r["final"]} for r in runs]
        row["hooks"] = [h for r in runs for h in r["hooks"]]
        rows.append(row)
    baseline = rows[0]
    for row in rows[1:]:
        row["beats_baseline_on_is_and_fid"] = (
            None if row["is"] is None or baseline["is"] is None else
            bool(row["is"] > baseline["is"] and row["fid"] < baseline["fid"]))
    return {"name": config.name, "description": config.description, "extractor": extractor_label,
            "reference": reference, "n_samples": config.eval.n_samples, "seeds": config.seeds,
            "base": config.base, "baseline": baseline["variant"], "variants": rows, "real_data": real}


def _fmt(value, spread=None, digits=3, scale=1.0) -> str:
    if value is None:
        return "n/a"
    text = f"{value * scale:.{digits}f}"
    return text + (f" ± {spread * scale:.{digits}f}" if spread is not None else "")


def render_markdown(report: dict, out: Path | None = None) -> str:
    lines = [f"# Experiment: {report['name']}", ""]
    if report["description"]:
        lines += [report["description"], ""]
    lines += [
        f"Features: **{report['extractor']}**. Reference images: `{report['reference']}`; "
        f"{report['n_samples']} samples per evaluation; seeds {report['seeds']}; mean ± standard deviation over seeds.",
        "IS is higher-better; FID, KID lower-better; precision (quality) and recall (coverage) higher-better. "
        f"The first variant, `{report['baseline']}`, is the baseline.",
        "",
        "| variant | IS | FID | KID (x1000) | precision | recall | steps | train s | eval s | hook s | beats baseline (IS and FID) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["variants"]:
        beats = row.get("beats_baseline_on_is_and_fid")
        mark = "baseline" if row["variant"] == report["baseline"] else "n/a" if beats is None else "yes" if beats else "no"
        lines.append(
            f"| {row['variant']} | {_fmt(row['is'], row['is_spread'], 2)} | {_fmt(row['fid'], row['fid_spread'], 2)} "
            f"| {_fmt(row['kid'], row['kid_spread'], 2, 1000)} | {_fmt(row['precision'], row['precision_spread'], 3)} "
            f"| {_fmt(row['recall'], row['recall_spread'], 3)} | {row['steps']:.0f} | {row['train_seconds']:.0f} "
            f"| {row['eval_seconds']:.0f} | {row['hook_seconds']:.0f} | {mark} |")
    real = report.get("real_data")
    if real:
        lines.append(f"| *real training images* | {_fmt(real['is'], None, 2)} | {_fmt(real['fid'], None, 2)} "
                     f"| {_fmt(real['kid'], None, 2, 1000)} | {_fmt(real['precision'])} | {_fmt(real['recall'])} "
                     "| | | | | |")
    lines += ["", "## Per seed", "", "| variant | seed | IS | FID | KID (x1000) | precision | recall |",
              "|---|---|---|---|---|---|---|"]
    for row in report["variants"]:
        for r in row["per_seed"]:
            lines.append(f"| {row['variant']} | {r['seed']} | {_fmt(r['is'], None, 2)} | {_fmt(r['fid'], None, 2)} "
                         f"| {_fmt(r['kid'], None, 2, 1000)} | {_fmt(r['precision'])} | {_fmt(r['recall'])} |")
    lines += ["", "## Settings", ""]
    lines += [f"- base: `{json.dumps(report['base'])}`"]
    lines += [f"- {row['variant']}: `{json.dumps(row['settings'])}`" for row in report["variants"]]
    if out is not None:
        lines += ["", "## Figures", "", "Samples (first seed, fixed noise, EMA generator where kept):", "",
                  "![samples](samples.png)", "", "Metrics during training (mean over seeds):", "",
                  "![metrics](metrics.png)", "", "Losses (first seed):", "", "![losses](losses.png)", ""]
    return "\n".join(lines) + "\n"


def write_figures(out: Path, config: ExperimentConfig, results: list[dict]) -> None:
    """samples.png (a grid per variant), metrics.png (FID/IS/precision/recall against steps), losses.png."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    names = [v["name"] for v in config.variants]
    first_seed = config.seeds[0]
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        grid = out / "runs" / name / f"seed{first_seed}" / "samples.png"
        if grid.is_file():
            ax.imshow(np.asarray(Image.open(grid)), cmap="gray")
        ax.set_title(name, fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    _save_figure(fig, out / "samples.png")

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for name in names:
        runs = [r for r in results if r["variant"] == name]
        steps = [e["step"] for e in runs[0]["evals"]]
        for ax, key in zip(axes, ("fid", "is", "precision", "recall")):
            values = [[e[key] for e in r["evals"]] for r in runs]
            if any(v is None for vs in values for v in vs):
                continue
            ax.plot(steps, np.mean(values, axis=0), marker="o", label=name)
    for ax, key in zip(axes, ("FID (lower is better)", "IS", "precision", "recall")):
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    _save_figure(fig, out / "metrics.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for name in names:
        log = out / "runs" / name / f"seed{first_seed}" / "log.jsonl"
        if not log.is_file():
            continue
        history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        steps = [h["step"] for h in history]
        axes[0].plot(steps, [h["loss_d"] for h in history], label=name, lw=1)
        axes[1].plot(steps, [h["loss_g"] for h in history], label=name, lw=1)
    axes[0].set_title("discriminator / critic loss")
    axes[1].set_title("generator loss")
    for ax in axes:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    _save_figure(fig, out / "losses.png")


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
