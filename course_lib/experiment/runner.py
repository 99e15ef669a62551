"""Running an experiment: every (variant, seed) trained, evaluated at checkpoints, resumable.

    course-lib experiment configs/mnist_improvements.yaml --out runs/improvements

Each (variant, seed) is an ordinary training run in DIR/runs/<variant>/seed<k>/. It is evaluated
every `eval.every` steps and at the end, with the EMA generator when the run keeps one, on
`n_samples` samples against the reference images by the shared `metrics.GeneratorEvaluator`: IS
(mean and std over 10 splits), FID, KID, precision and recall, all in one feature space
(`eval.extractor`; "auto" is `metrics.resolve_extractor`'s rule: Inception when its weights are
on disk, else the MNIST classifier for grey images, else 8x8 pixels; the report says which, since
the scales are not comparable). A finished run leaves result.json and is never redone; an
interrupted one resumes from its last checkpoint (evaluations already done are kept in
evals.json). The report (`course_lib.experiment.report`) gives, per variant, the mean and standard
deviation over seeds of every number, the training wall time, the evaluation time and the time the
trainer measured in callbacks, with sample grids, metric curves and loss curves.

Under torchrun (`torchrun --nproc-per-node N -m course_lib experiment CONFIG --out DIR`, on one node or
several, e.g. under SLURM) the experiment is one distributed job: every rank walks the same list of runs, each
run trains data-parallel (course_lib.training.distributed: global batch, rank 0 writes the run's files), every
evaluation is split across the ranks (metrics.sharded: the one-process numbers), and rank 0 alone writes
experiment.json, evals.json, result.json, the figures and the report. Every rank decides what to do with a run
(done, resume, train) from the same files, read after a barrier, so a resubmitted job resumes like one process.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from course_lib.core.errors import ConfigError
from course_lib.core.io import write_json_atomic
from course_lib.core.reports import write_report
from course_lib.experiment.config import EvalSettings, ExperimentConfig, base_data, default_reference, load_experiment
from course_lib.experiment.report import REPORT_METRICS, render_markdown, summarise, write_figures
from course_lib.metrics.evaluator import GeneratorEvaluator
from course_lib.training import TrainConfig, Trainer, distributed

# What every evaluation records: the report's metrics, and the spread of IS over its splits.
EVAL_KEYS = (*REPORT_METRICS, "is_std")


def make_evaluator(settings: EvalSettings, base: dict, device="auto", progress: bool = False) -> GeneratorEvaluator:
    """The evaluator every run of an experiment is scored with (one reference, one feature space, one noise seed)."""
    return GeneratorEvaluator(
        EVAL_KEYS,
        settings.reference or default_reference(base),
        extractor=settings.extractor,
        n_samples=settings.n_samples,
        seed=settings.seed,
        device=device,
        kid_subset=settings.kid_subset,
        kid_subsets=50,
        optional_logits=True,
        reference_limit=settings.n_reference,
        data_root=base_data(base).get("root"),
        image_size=base_data(base).get("image_size"),
        progress=progress,
    )


REAL_ROW_LEVEL, REAL_ROW_RESAMPLES = 0.95, 200


def real_data_scores(evaluator: GeneratorEvaluator, settings: EvalSettings, base: dict) -> dict:
    """The same numbers for real training images against the reference: what a perfect generator scores."""
    from course_lib.data import load_dataset
    from course_lib.metrics.uncertainty import interval_record

    data_settings = base_data(base)
    data = load_dataset(
        data_settings.get("dataset", "mnist"),
        data_settings.get("root"),
        "train",
        data_settings.get("image_size"),
        limit=settings.n_samples,
    )
    # The real row gets 95% bootstrap intervals over its images (a generated row's interval is over seeds instead):
    # set on the evaluator for this one call only, so the runs' evaluations keep their own settings.
    previous = evaluator.ci, evaluator.bootstrap
    evaluator.ci, evaluator.bootstrap = REAL_ROW_LEVEL, REAL_ROW_RESAMPLES
    try:
        scores = _json_safe(evaluator.score_images(data.images))
        intervals = dict(evaluator.last_intervals)
    finally:
        evaluator.ci, evaluator.bootstrap = previous
    scores["n_images"] = len(data.images)
    scores["intervals"] = {name: interval_record(i) for name, i in intervals.items()}
    return scores


def _json_safe(scores: dict) -> dict:
    """NaN/inf (a diverged generator) as None, so report.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in scores.items()}


def _without_device(settings: dict) -> dict:
    """Settings as compared between a finished run and the config: the device may differ."""
    return {**settings, "run": {k: v for k, v in settings["run"].items() if k != "device"}}


def _settings_of(saved: dict, source: str) -> dict:
    """A run's recorded settings in the sectioned form (result.json of runs before the sections held the flat
    form: translated, so a finished run is not redone)."""
    return TrainConfig.from_dict(saved, source=source).to_dict()


def _eval_steps(total: int, every: int) -> list[int]:
    steps = list(range(every, total, every)) if every else []
    return steps + [total]


def callback_summaries(trainer: Trainer) -> list[dict]:
    """Each callback's summary with the seconds the trainer measured in it (callback_seconds, in callback order)."""
    seconds = list(trainer.callback_seconds.values())
    return [{"callback": c.name, **c.summary(), "seconds": seconds[i]} for i, c in enumerate(trainer.callbacks)]


def run_one(
    config: ExperimentConfig,
    variant: dict,
    seed: int,
    run_dir: Path,
    evaluator: GeneratorEvaluator,
    data=None,
    progress: bool = True,
    device: str | None = None,
    dist: distributed.Distributed | None = None,
) -> dict:
    """Train and evaluate one (variant, seed), resuming where an earlier attempt stopped. `dist`: the job this
    process is a rank of (rank 0 writes; every rank trains and evaluates); None: a single process."""
    dist = dist or distributed.Distributed()
    dist.barrier()  # every rank reads this run's files after rank 0 finished writing the previous run's
    train_config = config.train_config(variant, seed)
    if device is not None:
        train_config.run.device = device
    settings = train_config.to_dict()
    result_path, evals_path = run_dir / "result.json", run_dir / "evals.json"
    if result_path.is_file():
        done = json.loads(result_path.read_text())
        if _without_device(_settings_of(done.get("settings", {}), str(result_path))) != _without_device(settings):
            raise ConfigError(
                f"{run_dir} holds a finished run with other settings than the config now asks for; "
                "use another --out folder or delete that run folder"
            )
        return done
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if checkpoint.is_file():
        trainer = Trainer.resume(run_dir, data=data, progress=progress, device=train_config.run.device)
        resumed = trainer.config.to_dict()
        if settings["data"]["image_size"] is None:  # the checkpoint records the dataset's own size
            resumed["data"]["image_size"] = None
        if _without_device(resumed) != _without_device(settings):
            raise ConfigError(
                f"{run_dir} holds an unfinished run with other settings than the config now asks for; "
                "use another --out folder or delete that run folder"
            )
    else:
        trainer = Trainer(train_config, run_dir, data=data, progress=progress)
    evals = json.loads(evals_path.read_text()) if evals_path.is_file() else []
    evals = [e for e in evals if e["step"] <= trainer.step]
    eval_seconds = sum(e["seconds"] for e in evals)
    for target in _eval_steps(train_config.optim.steps, config.eval.every):
        if any(e["step"] == target for e in evals):
            continue
        if trainer.step < target:
            trainer.train(target)
        started = time.perf_counter()
        scores = _json_safe(evaluator(trainer.generator_for_eval()))
        seconds = time.perf_counter() - started
        eval_seconds += seconds
        evals.append({"step": target, **scores, "seconds": seconds})
        if dist.is_main:
            write_json_atomic(evals_path, evals)
    result = {
        "variant": variant["name"],
        "seed": seed,
        "settings": settings,
        "steps": trainer.step,
        "train_seconds": trainer.elapsed,
        "eval_seconds": eval_seconds,
        "callback_seconds": float(sum(trainer.callback_seconds.values())),
        "world_size": dist.world_size,  # data-parallel processes that trained and evaluated it
        "callbacks": callback_summaries(trainer),
        "final": {k: evals[-1].get(k) for k in EVAL_KEYS},
        "evals": evals,
    }
    if dist.is_main:
        write_json_atomic(result_path, result)
    return result


def run_experiment(
    config: ExperimentConfig | str | os.PathLike | dict,
    out_dir: str | os.PathLike,
    progress: bool = True,
    device: str | None = None,
    only: list[str] | None = None,
) -> dict | None:
    """Run every (variant, seed) not yet finished in out_dir, then write report.json and report.md.

    `only`: run just these variants (e.g. to split an experiment over several processes or machines
    sharing out_dir); the full report is written once every run of the config has finished, and None is
    returned until then. Until then, and when the runs are interrupted (Ctrl-C, a diverged run), the report
    is a partial one of the runs that finished: marked partial, with the missing runs listed.
    """
    from course_lib.data import load_dataset

    if not isinstance(config, ExperimentConfig):
        config = load_experiment(config)
    names = [v["name"] for v in config.variants]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ConfigError(f"no variant(s) {', '.join(unknown)} in {config.name}; variants: {', '.join(names)}")
    out = Path(out_dir)
    base_device = config.train_config(config.variants[0], config.seeds[0]).run.device
    # Under torchrun: join the job before the evaluator meets the other ranks (reference features in shares).
    dist = distributed.from_environment(device or base_device)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "experiment.json", config.to_dict())
    eval_device = dist.device(device or base_device)  # cuda:LOCAL_RANK on a GPU node
    evaluator = make_evaluator(config.eval, config.base, device=eval_device).prepare()
    datasets: dict[tuple, Any] = {}
    results = []
    by_name = {v["name"]: v for v in config.variants}
    order = [by_name[name] for name in only] if only else config.variants  # --only also sets the order
    todo = [(v, s) for v in order for s in config.seeds]
    try:
        for i, (variant, seed) in enumerate(todo, start=1):
            tc = config.train_config(variant, seed)
            data = tc.data
            key = (data.dataset, data.root, data.image_size, data.limit)
            if key not in datasets:
                datasets[key] = load_dataset(data.dataset, data.root, "train", data.image_size, limit=data.limit)
            run_dir = out / "runs" / variant["name"] / f"seed{seed}"
            state = "done" if (run_dir / "result.json").is_file() else "resuming" if run_dir.is_dir() else "training"
            if dist.is_main:
                print(f"[{i}/{len(todo)}] {variant['name']} seed {seed}: {state} ({tc.optim.steps} steps)", flush=True)
            results.append(
                run_one(
                    config, variant, seed, run_dir, evaluator, datasets[key], progress and dist.is_main, device, dist
                )
            )
    except ConfigError:
        raise  # settings that do not fit the folder: nothing new finished, and the report there stays as it is
    except BaseException:  # Ctrl-C, a diverged run, ...: report what finished, then stop as asked
        if dist.is_main:
            if only:
                results = _results_on_disk(config, out, results)
            _write_partial_report(out, config, evaluator, results)
        raise
    dist.barrier()  # the last run's result.json is on disk for every rank
    if only:
        results = _results_on_disk(config, out, results)
        if len(results) < len(config.variants) * len(config.seeds):
            if dist.is_main:
                _write_partial_report(out, config, evaluator, results)
            return None
    real = real_data_scores(evaluator, config.eval, config.base)  # every rank: its features are extracted in shares
    report = summarise(config, results, evaluator.label, evaluator.reference, real)
    if dist.is_main:
        write_figures(out, config, results)
        write_report(out, report, lambda written: render_markdown(written, out))
    return report


def _results_on_disk(config: ExperimentConfig, out: Path, ours: list[dict]) -> list[dict]:
    """Every finished run of the config in out: this process's results, and result.json of the others (the other
    processes sharing out, or earlier ones), in the config's order."""
    by_run = {(r["variant"], r["seed"]): r for r in ours}
    results = []
    for variant, seed in ((v["name"], s) for v in config.variants for s in config.seeds):
        path = out / "runs" / variant / f"seed{seed}" / "result.json"
        if (variant, seed) in by_run:
            results.append(by_run[(variant, seed)])
        elif path.is_file():
            results.append(json.loads(path.read_text()))
    return results


def _write_partial_report(out: Path, config: ExperimentConfig, evaluator: GeneratorEvaluator, results: list[dict]):
    """report.json/report.md of the runs that finished, marked partial with the missing runs listed. Without the
    real-image row (its features cost as much as a run's evaluation; the full report has it). Nothing is written
    when no run has finished, so an earlier report is not replaced by an empty one."""
    done = {(r["variant"], r["seed"]) for r in results}
    missing = [
        {"variant": v["name"], "seed": s} for v in config.variants for s in config.seeds if (v["name"], s) not in done
    ]
    if not results:
        print("no run has finished yet: no report written", flush=True)
        return
    try:
        report = summarise(config, results, evaluator.label, evaluator.reference, None, missing=missing)
        write_figures(out, config, results)
        write_report(out, report, lambda written: render_markdown(written, out))
    except Exception as exc:  # noqa: BLE001 - the partial report must not hide why the runs stopped
        print(f"could not write the partial report: {exc}", flush=True)
        return
    names = ", ".join(f"{m['variant']} seed {m['seed']}" for m in missing)
    print(
        f"wrote a partial report to {out / 'report.md'}: {len(results)} of {len(results) + len(missing)} runs "
        f"finished; missing: {names} (run the same command again to finish them)",
        flush=True,
    )
