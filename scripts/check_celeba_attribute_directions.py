"""Do the shipped face generator's attribute directions do what notebook 10 says? (issue 29)

The directions in course_lib/assets/celeba_dcgan.pt were built from a small attribute classifier's labels
(scripts/train_pretrained_celeba_dcgan.py). Its held-out accuracy looked fine, but for Eyeglasses it was the
accuracy of always answering "no" (92% = 1 - the 8% base rate), so the notebook printed "3% have it after
alpha = +1.5" under faces that visibly wear glasses. This script:

1. retrains that classifier twice on the same labelled real faces and the same held-out fifth: once with the
   shipped recipe (plain BCE, threshold 0.5) and once class-balanced (BCE with pos_weight = negatives/positives,
   and per attribute the threshold that balances the two error rates on the training faces);
2. scores both on the held-out faces with balanced accuracy and ROC AUC (`course_lib.latent.attribute_check`),
   against the majority-class baseline, with bootstrap 95% intervals;
3. moves fresh samples of the shipped generator along each shipped direction (alpha -1.5, 0, +1.5) and
   records, by the balanced classifier, the fraction that has *every* attribute: the intended change and
   what else changes (entanglement);
4. does the same with each direction decorrelated from the others (InterFaceGAN's projection).

With `--rebuild-directions` it first rebuilds the directions the generator file ships from the checked classifier:
10,000 samples z ~ N(0, I) (seed 11, as the recipe) labelled by the class-balanced classifier at its balanced
thresholds, direction = mean(z | yes) - mean(z | no) (the recipe's top/bottom-10% rule where fewer than 2% fall on
one side), written into course_lib/assets/celeba_dcgan.pt (its weights and format unchanged: only the `pretrained`
record's directions and their description), and then measures those. Put the printed sha256 into
`course_lib.latent.pretrained.PRETRAINED["celeba-dcgan"]`.

Writes docs/results/celeba_attribute_directions/report.json and report.md (numbers, n, machine, load), and
course_lib/assets/celeba_dcgan_attribute_check.json, the part notebook 10 prints and uses, with the balanced
classifier's weights in course_lib/assets/celeba_attribute_classifier.pt
(`course_lib.latent.pretrained.attribute_check()`; tests/test_attribute_check.py checks that the two agree).
Needs CelebA (the first 20,000 aligned faces and list_attr_celeba_first20000.txt) under --data-root; nothing
made of the images is written into the repository. Run it under `nice -n 19`; it uses one torch thread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_lib.core.io import save_torch_atomic, write_json_atomic
from course_lib.core.reports import write_report
from course_lib.latent.attribute_check import AttributeNet
from course_lib.metrics.uncertainty import binomial_interval

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "results" / "celeba_attribute_directions"
ASSET = REPO / "course_lib" / "assets" / "celeba_dcgan_attribute_check.json"
CLASSIFIER = REPO / "course_lib" / "assets" / "celeba_attribute_classifier.pt"  # the balanced one, weights only
ASSET_KEYS = ("script", "held_out_faces", "held_out", "fresh_samples", "effects", "decorrelated_directions")
ASSET_KEYS += ("label_correlation", "reading_classifier", "reading_effects", "thresholds", "classifier_file_sha256")
ASSET_KEYS += ("effects_95ci",)  # notebook 10 prints the fractions' intervals beside them
ALPHAS = (-1.5, 0.0, 1.5)
GENERATOR_FILE = REPO / "course_lib" / "assets" / "celeba_dcgan.pt"
DIRECTION_SAMPLES, DIRECTION_SEED = 10_000, 11  # as scripts/train_pretrained_celeba_dcgan.py labelled them


def recipe():
    """The training script of the shipped generator, for its classifier, attribute list and data layout."""
    spec = importlib.util.spec_from_file_location(
        "celeba_recipe", REPO / "scripts" / "train_pretrained_celeba_dcgan.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def labelled_faces(r, data_root, limit: int):
    from course_lib.data import list_images, load_celeba
    from course_lib.latent import read_celeba_attributes

    folder = r.celeba_folder(data_root)
    attr_names, table = read_celeba_attributes(folder / r.ATTRIBUTE_FILE)
    names = [p.name for p in list_images(folder / "img_align_celeba")]
    n = sum(1 for name in names if name in table)  # the labelled files come first in name order
    n = min(n, limit) if limit else n
    if not all(name in table for name in names[:n]):
        raise SystemExit("the labelled CelebA files are not the first ones in name order: cannot load only those")
    data = load_celeba(data_root, image_size=r.IMAGE_SIZE, limit=n, progress=False)
    labels = torch.stack([table[name] for name in names[:n]])[:, [attr_names.index(a) for a in r.ATTRIBUTES]].gt(0)
    return data.images[:n], labels.float()


def train(r, images, labels, train_rows, epochs: int, balanced: bool):
    from course_lib.core.images import to_float

    torch.manual_seed(0)
    net = AttributeNet(len(r.ATTRIBUTES))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    positives = labels[train_rows].mean(0)
    pos_weight = (1 - positives) / positives if balanced else None
    for epoch in range(epochs):
        net.train()
        order = train_rows[torch.randperm(len(train_rows))]
        for batch in order.split(64):
            x = to_float(images[batch])
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)  # mirrored faces keep their attributes
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), labels[batch], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        log(
            f"{'balanced' if balanced else 'shipped recipe'} classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}"
        )
    return net.eval()


@torch.no_grad()
def probabilities(net, images) -> torch.Tensor:
    from course_lib.core.images import to_float

    return torch.cat([torch.sigmoid(net(to_float(part))) for part in images.split(256)])


def thresholds_from_training_faces(r, net, images, labels, rows) -> dict:
    """Per attribute, the threshold that balances the two error rates on the training faces (never the held-out)."""
    from course_lib.latent.attribute_check import balanced_threshold

    p, truth = probabilities(net, images[rows]).numpy(), labels[rows].numpy().astype(bool)
    return {a: balanced_threshold(p[:, j], truth[:, j]) for j, a in enumerate(r.ATTRIBUTES)}


def held_out_scores(r, net, images, labels, rows, thresholds: dict) -> dict:
    from course_lib.latent.attribute_check import binary_scores, bootstrap_interval, roc_auc

    p, truth = probabilities(net, images[rows]).numpy(), labels[rows].numpy().astype(bool)
    out = {}
    for j, attribute in enumerate(r.ATTRIBUTES):
        t = thresholds[attribute]
        scores = {"threshold": t, **binary_scores(p[:, j], truth[:, j], threshold=t)}
        scores["balanced_accuracy_95ci"] = bootstrap_interval(
            lambda a, b, t=t: binary_scores(a, b, threshold=t)["balanced_accuracy"], p[:, j], truth[:, j]
        )
        scores["auc_95ci"] = bootstrap_interval(roc_auc, p[:, j], truth[:, j])
        out[attribute] = scores
    return out


def effects(r, net, thresholds: dict, generator, directions: dict, fresh: torch.Tensor) -> dict:
    """{direction: {alpha: {attribute: fraction of the fresh samples the classifier calls positive}}}."""
    from course_lib.latent import apply_direction
    from course_lib.latent.pretrained import generate_uint8

    out = {}
    for name, direction in directions.items():
        out[name] = {}
        for alpha in ALPHAS:
            images = torch.cat(
                [generate_uint8(generator, part) for part in apply_direction(fresh, direction, alpha).split(250)]
            )
            said = probabilities(net, images) > torch.tensor([thresholds[a] for a in r.ATTRIBUTES])
            out[name][f"{alpha:+.1f}"] = {a: float(said[:, j].float().mean()) for j, a in enumerate(r.ATTRIBUTES)}
        log(f"{name}: {out[name]}")
    return out


def rebuild_directions(r, net, thresholds: dict, generator, shipped_names, fresh: torch.Tensor) -> tuple[dict, dict]:
    """Directions from the checked classifier's labels of the generator's own samples, and the record of how."""
    from course_lib.latent import apply_direction, attribute_direction, sample_latents
    from course_lib.latent.pretrained import generate_uint8

    def labels_of(z):
        images = torch.cat([generate_uint8(generator, part) for part in z.split(250)])
        return probabilities(net, images)

    z = sample_latents(DIRECTION_SAMPLES, generator.latent_dim, seed=DIRECTION_SEED)
    probs, base = labels_of(z), labels_of(fresh)
    directions, effect = {}, {}
    for name in shipped_names:
        j, t = r.ATTRIBUTES.index(name), thresholds[name]
        yes, rule = probs[:, j] > t, f"p > {t:.2f} vs p <= {t:.2f} (the balanced threshold)"
        if not 0.02 <= float(yes.float().mean()) <= 0.98:  # too few on one side for a stable mean: rank instead
            rank, tenth = probs[:, j].argsort(), len(z) // 10
            z_used = torch.cat([z[rank[:tenth]], z[rank[-tenth:]]])
            directions[name] = attribute_direction(z_used, torch.arange(len(z_used)) >= tenth).clone()
            rule = "top 10% vs bottom 10% of p (fewer than 2% of samples on one side of the threshold)"
        else:
            directions[name] = attribute_direction(z, yes).clone()
        rates = {"+0.0": float((base[:, j] > t).float().mean())}
        for alpha in (-1.5, 1.5):
            rates[f"{alpha:+.1f}"] = float(
                (labels_of(apply_direction(fresh, directions[name], alpha))[:, j] > t).float().mean()
            )
        effect[name] = {
            "fraction_of_samples_with_it": float(yes.float().mean()),
            "rule": rule,
            "direction_norm": float(directions[name].norm()),
            "with_it_after_moving_alpha": rates,
        }
        log(f"rebuilt {name}: {float(yes.float().mean()):.1%} of samples; alpha -1.5/0/+1.5 -> {rates}")
    method = (
        f"{DIRECTION_SAMPLES:,} samples z ~ N(0, I) (seed {DIRECTION_SEED}) labelled by the class-balanced attribute "
        "classifier of scripts/check_celeba_attribute_directions.py (course_lib/assets/celeba_attribute_classifier.pt, "
        "held-out scores in docs/results/celeba_attribute_directions) at its balanced thresholds; "
        "direction = mean(z | yes) - mean(z | no) (course_lib.latent.attribute_direction)"
    )
    return directions, {"method": method, "effect_on_fresh_samples": effect, "fresh_samples": len(fresh)}


def write_directions(path: Path, directions: dict, record: dict, classifier: dict) -> str:
    """The generator file with `directions` in its `pretrained` record; weights and format as they were."""
    from course_lib.latent.pretrained import file_sha256

    asset = torch.load(path, map_location="cpu", weights_only=False)
    meta = asset["pretrained"]
    meta["directions"] = {k: v.tolist() for k, v in directions.items()}
    meta["directions_method"] = record["method"]
    meta["directions_check"] = {"classifier": classifier, **record}
    save_torch_atomic(asset, path)
    return file_sha256(path)


def refresh_generator_report(r) -> None:
    """After a rebuild: docs/results/celeba_dcgan's record of the generator file (bytes, sha256) and of its directions,
    re-rendered, with the assets README section it makes. Its measurements (FID, the truncation sweeps) are of the
    weights, which a rebuild leaves as they were; the script that made them needs the training run's features."""
    from course_lib.core.io import write_text_atomic
    from course_lib.core.reports import render_again
    from course_lib.latent.pretrained import file_sha256

    record = torch.load(GENERATOR_FILE, map_location="cpu", weights_only=False)["pretrained"]["directions_check"]
    report_file = r.RESULTS / "report.json"
    rep = json.loads(report_file.read_text(encoding="utf-8"))
    rep["asset"].update(bytes=GENERATOR_FILE.stat().st_size, sha256=file_sha256(GENERATOR_FILE))
    rep["directions"] = record
    write_json_atomic(report_file, rep)
    render_again(r.RESULTS, r.report_markdown)
    # The assets README's section on the file: its size, sha256 and how its directions were made (the rest of the
    # section is about the weights, unchanged).
    readme = REPO / "course_lib" / "assets" / "README.md"
    text = readme.read_text(encoding="utf-8")
    start = text.index("## `celeba_dcgan.pt`")
    end = text.index("\n## ", start + 1)
    section = re.sub(
        r"[\d,]+ bytes, sha256 `[0-9a-f]{64}`",
        f"{rep['asset']['bytes']:,} bytes, sha256 `{rep['asset']['sha256']}`",
        text[start:end],
    )
    section = re.sub(
        r"- Directions: [^;]*(?:;[^;]*)*?; attribute file",
        f"- Directions: {record['method']}; attribute file",
        section,
        count=1,
    )
    write_text_atomic(readme, text[:start] + section + text[end:])
    log(f"refreshed {report_file} (asset sha256 {rep['asset']['sha256']}) and the assets README section")


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_at_start": os.getloadavg()[0],
    }


def _count(fraction: float, n: int) -> int:
    """The whole count behind a stored fraction of n (stored as float32 means: k / n to about 1e-7)."""
    count = round(fraction * n)
    if abs(fraction * n - count) > 1e-3:
        raise ValueError(f"{fraction!r} of {n} is not a whole count: not a fraction of n")
    return count


def _wilson(fraction: float, n: int) -> list[float]:
    interval = binomial_interval(_count(fraction, n), n)
    return [interval.low, interval.high]


def _phi_interval(phi: float, n: int) -> list[float]:
    """95% interval of a correlation over n pairs by Fisher's z (atanh(r) ± 1.96 / sqrt(n - 3)); phi is Pearson's r
    of two 0/1 labels."""
    if abs(phi) >= 1 - 1e-9:
        return [float(np.sign(phi)), float(np.sign(phi))]  # an attribute with itself: exact
    z, half = np.arctanh(phi), 1.959963984540054 / np.sqrt(n - 3)
    return [float(np.tanh(z - half)), float(np.tanh(z + half))]


def add_count_intervals(rep: dict) -> dict:
    """95% intervals of every proportion the report gives, from its counts (no re-run: the numbers are those
    measured): Wilson's interval of the base rate, the majority baseline and the accuracy of each held-out score
    (n held-out faces) and of each fraction of fresh samples (n fresh samples); Fisher's z interval of each label
    correlation (n labelled faces). The bootstrap intervals of balanced accuracy and AUC stay as measured."""
    for scores in rep["held_out"].values():
        for s in scores.values():
            n = s["n"]
            s["base_rate_95ci"] = _wilson(s["positives"] / n, n)
            s["majority_baseline_accuracy_95ci"] = _wilson(s["majority_baseline_accuracy"], n)
            s["accuracy_95ci"] = _wilson(s["accuracy"], n)
    rep["effects_95ci"] = {
        kind: {
            name: {
                alpha: {a: _wilson(f, rep["fresh_samples"]) for a, f in rates.items()} for alpha, rates in by.items()
            }
            for name, by in directions.items()
        }
        for kind, directions in rep["effects"].items()
    }
    rep["label_correlation_95ci"] = {
        a: {b: _phi_interval(phi, rep["labelled_faces"]) for b, phi in row.items()}
        for a, row in rep["label_correlation"].items()
    }
    rep["intervals"] = (
        "95%: bootstrap over the held-out faces for balanced accuracy and AUC; Wilson score interval from the counts "
        "for every proportion (base rate, accuracy, fraction of fresh samples); Fisher's z for label correlations"
    )
    return rep


def _pct(value: float, interval: list[float]) -> str:
    return f"{value:.1%} [{interval[0]:.1%}, {interval[1]:.1%}]"


def report_markdown(rep: dict) -> str:
    lines = [
        "# Face attribute directions: does the classifier work, and what else moves?",
        "",
        f"Made by `scripts/check_celeba_attribute_directions.py` in {rep['seconds']:.0f} s wall on "
        f"{rep['machine']['cpus']} CPUs ({rep['machine']['torch_threads']} torch thread, load average "
        f"{rep['machine']['load_average_at_start']:.1f} at the start: a shared machine). Classifier: "
        f"`AttributeNet` of scripts/train_pretrained_celeba_dcgan.py, {rep['epochs']} epochs on "
        f"{rep['train_faces']:,} labelled real faces, scored on {rep['held_out_faces']:,} held-out ones "
        "(95% intervals in brackets: bootstrap over the held-out faces for balanced accuracy and AUC, Wilson's "
        "score interval from the counts for base rates and accuracies).",
        "",
        "## The classifiers on held-out real faces",
        "",
        f"n = {rep['held_out_faces']:,} held-out faces for every cell (positives: the faces that have the attribute).",
        "",
        "| attribute | n (positives) | base rate [95%] | majority baseline [95%] | recipe: accuracy [95%] "
        "| recipe: balanced acc. [95%] | recipe: AUC [95%] | balanced: threshold | balanced: accuracy [95%] "
        "| balanced: balanced acc. [95%] | balanced: AUC [95%] |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a, s in rep["held_out"]["balanced"].items():
        old = rep["held_out"]["shipped_recipe"][a]
        lines.append(
            f"| {a} | {s['n']:,} ({s['positives']:,}) | {_pct(s['positives'] / s['n'], s['base_rate_95ci'])} "
            f"| {_pct(s['majority_baseline_accuracy'], s['majority_baseline_accuracy_95ci'])} "
            f"| {_pct(old['accuracy'], old['accuracy_95ci'])} "
            f"| {_pct(old['balanced_accuracy'], old['balanced_accuracy_95ci'])} "
            f"| {old['auc']:.3f} [{old['auc_95ci'][0]:.3f}, {old['auc_95ci'][1]:.3f}] | {s['threshold']:.2f} "
            f"| {_pct(s['accuracy'], s['accuracy_95ci'])} | {_pct(s['balanced_accuracy'], s['balanced_accuracy_95ci'])} "
            f"| {s['auc']:.3f} [{s['auc_95ci'][0]:.3f}, {s['auc_95ci'][1]:.3f}] |"
        )
    lines += ["", rep["reading_classifier"], "", "## Moving fresh samples along each direction", ""]
    if "directions_rebuilt" in rep:
        lines += [
            "The shipped directions were rebuilt by this run (`--rebuild-directions`) from the balanced classifier: "
            f"{rep['directions_rebuilt']['method']}. The fresh samples below are another draw (seed 12).",
            "",
        ]
    attrs = list(rep["held_out"]["balanced"])
    for kind, title in (
        ("shipped", "shipped directions"),
        ("decorrelated", "decorrelated directions (InterFaceGAN projection)"),
    ):
        lines += [
            f"### {title}",
            "",
            f"Fraction of n = {rep['fresh_samples']:,} fresh samples (each cell) the balanced classifier calls "
            "positive, with its 95% Wilson interval in points (from the count):",
            "",
            "| direction | alpha | " + " | ".join(attrs) + " |",
            "|---|---|" + "---|" * len(attrs),
        ]
        for name, by_alpha in rep["effects"][kind].items():
            for alpha, rates in by_alpha.items():
                bounds = rep["effects_95ci"][kind][name][alpha]
                cells = [f"{rates[a]:.0%} [{100 * bounds[a][0]:.0f}, {100 * bounds[a][1]:.0f}]" for a in attrs]
                lines.append(f"| {name} | {alpha} | " + " | ".join(cells) + " |")
        lines.append("")
    widest = max((hi - lo) / 2 for row in rep["label_correlation_95ci"].values() for lo, hi in row.values() if hi > lo)
    lines += [rep["reading_effects"], "", "## Correlation between CelebA's labels (phi, all labelled faces)", ""]
    lines += [
        f"n = {rep['labelled_faces']:,} labelled faces; each phi's 95% interval (Fisher's z, in report.json "
        f"`label_correlation_95ci`) is at most ± {widest:.2f}.",
        "",
    ]
    names = list(rep["label_correlation"])
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in names:
        lines.append(f"| {a} | " + " | ".join(f"{rep['label_correlation'][a][b]:+.2f}" for b in names) + " |")
    lines += ["", "## Cosine similarity between the shipped directions", ""]
    lines += [
        "Exact for the directions the generator file ships (a property of those vectors, not an estimate: no "
        "interval). Each direction was built from "
        + (f"{rep['directions_rebuilt']['samples']:,} labelled samples." if "directions_rebuilt" in rep else "samples.")
        + " Another draw of those samples would give other directions; that spread was not measured (n = 1 build).",
        "",
    ]
    names = list(rep["cosine_between_shipped_directions"])
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in names:
        lines.append(
            f"| {a} | " + " | ".join(f"{rep['cosine_between_shipped_directions'][a][b]:+.2f}" for b in names) + " |"
        )
    lines.append("")
    return "\n".join(lines)


def readings(rep: dict) -> tuple[str, str]:
    """The report's sentences, computed from its numbers."""
    scores = rep["held_out"]["balanced"]
    working = [a for a, s in scores.items() if s["balanced_accuracy_95ci"][0] > 0.75]
    rough = [f"{a} {s['balanced_accuracy']:.0%}" for a, s in scores.items() if a not in working]
    recipe_useless = [a for a, s in rep["held_out"]["shipped_recipe"].items() if s["balanced_accuracy"] < 0.6]
    classifier = (
        (
            "The recipe's classifier (which built the first directions; they have been rebuilt from the retrained one) "
            if "directions_rebuilt" in rep
            else "The classifier the directions were built with "
        )
        + (
            f"is no better than a constant answer for {', '.join(recipe_useless)} (balanced accuracy below 60%): "
            "its accuracy only repeats the base rate. "
            if recipe_useless
            else "beats a constant answer on every attribute. "
        )
        + f"Retrained class-balanced, it is reliable for {', '.join(working) or 'none of them'} (the 95% interval of "
        "the balanced accuracy above 75%)"
        + (f"; read its counts for {', '.join(rough)} (balanced accuracy) as rough." if rough else ".")
    )
    side = []
    for name, by_alpha in rep["effects"]["shipped"].items():
        up, zero = by_alpha["+1.5"], by_alpha["+0.0"]
        worst = max((a for a in up if a != name), key=lambda a: abs(up[a] - zero[a]))
        dec = rep["effects"]["decorrelated"][name]["+1.5"]
        side.append(
            f"{name} {zero[name]:.0%} -> {up[name]:.0%} (false positives on real faces without it: "
            f"{1 - scores[name]['true_negative_rate']:.0%}; largest side effect: {worst} {zero[worst]:.0%} -> "
            f"{up[worst]:.0%}; decorrelated direction: {name} -> {dec[name]:.0%}, {worst} -> {dec[worst]:.0%})"
        )
    effects_text = "At alpha = +1.5, by the retrained classifier: " + "; ".join(side) + "."
    return classifier, effects_text


def write(args, rep: dict) -> None:
    write_report(args.out, add_count_intervals(rep), report_markdown)
    write_json_atomic(args.asset, {key: rep[key] for key in ASSET_KEYS})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None, help="folder holding celeba/ (default: course_lib's data root)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fresh", type=int, default=1000, help="fresh generator samples moved along each direction")
    parser.add_argument("--limit", type=int, default=0, help="labelled faces to use (0: all; small for a smoke test)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--asset", type=Path, default=ASSET, help="the notebook's copy of the readings")
    parser.add_argument("--classifier", type=Path, default=CLASSIFIER, help="where the balanced classifier goes")
    parser.add_argument("--render-only", action="store_true", help="rewrite report.md and the asset from report.json")
    parser.add_argument(
        "--refresh-generator-report",
        action="store_true",
        help="only update docs/results/celeba_dcgan's record of the generator file after a rebuild (no CelebA needed)",
    )
    parser.add_argument(
        "--rebuild-directions",
        action="store_true",
        help=f"first rebuild the directions in {GENERATOR_FILE.name} from the balanced classifier's labels",
    )
    args = parser.parse_args(argv)
    if args.refresh_generator_report:
        refresh_generator_report(recipe())
        return 0
    if args.render_only:
        rep = json.loads((args.out / "report.json").read_text())
        rep["reading_classifier"], rep["reading_effects"] = readings(rep)
        write(args, rep)
        return 0
    torch.set_num_threads(1)
    start, info = time.time(), machine()
    r = recipe()
    from course_lib.latent import sample_latents
    from course_lib.latent.attribute_check import decorrelated_direction
    from course_lib.latent.pretrained import file_sha256, load_pretrained, pretrained_directions

    images, labels = labelled_faces(r, args.data_root, args.limit)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))  # the recipe's split
    n_val = len(images) // 5
    val, train_rows = perm[:n_val], perm[n_val:]
    log(f"{len(images)} labelled faces: {len(train_rows)} train, {n_val} held out")
    nets = {
        kind: train(r, images, labels, train_rows, args.epochs, kind == "balanced")
        for kind in ("shipped_recipe", "balanced")
    }
    thresholds = {
        "shipped_recipe": dict.fromkeys(r.ATTRIBUTES, 0.5),  # as the shipped directions were built
        "balanced": thresholds_from_training_faces(r, nets["balanced"], images, labels, train_rows),
    }
    held_out = {kind: held_out_scores(r, net, images, labels, val, thresholds[kind]) for kind, net in nets.items()}
    generator = load_pretrained("celeba-dcgan").eval()
    shipped = pretrained_directions("celeba-dcgan")
    fresh = sample_latents(args.fresh, generator.latent_dim, seed=12)
    rebuilt = None
    if args.rebuild_directions:
        save_torch_atomic(
            {
                "state": nets["balanced"].state_dict(),
                "attributes": list(r.ATTRIBUTES),
                "thresholds": thresholds["balanced"],
            },
            args.classifier,
        )
        record_fresh = sample_latents(300, generator.latent_dim, seed=12)  # the recipe's check of a built direction
        shipped, rebuilt = rebuild_directions(
            r, nets["balanced"], thresholds["balanced"], generator, list(shipped), record_fresh
        )
        held = held_out["balanced"]
        classifier = {  # the fields the generator's report reads (held-out accuracy and base rate), and which file
            "file": "course_lib/assets/celeba_attribute_classifier.pt",
            "sha256": file_sha256(args.classifier),
            "thresholds": thresholds["balanced"],
            "held_out": n_val,
            "held_out_accuracy": {a: held[a]["accuracy"] for a in shipped},
            "held_out_balanced_accuracy": {a: held[a]["balanced_accuracy"] for a in shipped},
            "held_out_base_rate": {a: held[a]["positives"] / held[a]["n"] for a in shipped},
        }
        sha = write_directions(GENERATOR_FILE, shipped, rebuilt, classifier)
        log(f"wrote {GENERATOR_FILE} with the rebuilt directions: sha256 {sha}; put it in PRETRAINED['celeba-dcgan']")
    decorrelated = {
        name: decorrelated_direction(d, [o for other, o in shipped.items() if other != name])
        for name, d in shipped.items()
    }
    rep = {
        "script": "scripts/check_celeba_attribute_directions.py",
        "epochs": args.epochs,
        "labelled_faces": len(images),
        "train_faces": len(train_rows),
        "held_out_faces": n_val,
        "thresholds": thresholds,
        "held_out": held_out,
        "fresh_samples": args.fresh,
        "fresh_seed": 12,
        "alphas": list(ALPHAS),
        "effects": {
            "shipped": effects(r, nets["balanced"], thresholds["balanced"], generator, shipped, fresh),
            "decorrelated": effects(r, nets["balanced"], thresholds["balanced"], generator, decorrelated, fresh),
        },
        "decorrelated_directions": {k: v.tolist() for k, v in decorrelated.items()},
        "label_correlation": {  # phi coefficients between CelebA's labels over all the labelled faces
            a: {b: float(np.corrcoef(labels[:, i], labels[:, j])[0, 1]) for j, b in enumerate(r.ATTRIBUTES)}
            for i, a in enumerate(r.ATTRIBUTES)
        },
        "cosine_between_shipped_directions": {
            a: {b: float(torch.nn.functional.cosine_similarity(da, db, dim=0)) for b, db in shipped.items()}
            for a, da in shipped.items()
        },
        "machine": info,
    }
    if rebuilt is not None:
        rep["directions_rebuilt"] = {"method": rebuilt["method"], "samples": DIRECTION_SAMPLES, "seed": DIRECTION_SEED}
    save_torch_atomic(
        {
            "state": nets["balanced"].state_dict(),
            "attributes": list(r.ATTRIBUTES),
            "thresholds": thresholds["balanced"],
        },
        args.classifier,
    )
    rep["classifier_file_sha256"] = file_sha256(args.classifier)
    rep["seconds"] = time.time() - start
    rep["reading_classifier"], rep["reading_effects"] = readings(rep)
    write(args, rep)
    if rebuilt is not None:
        refresh_generator_report(r)
    log(f"wrote {args.out / 'report.json'} in {rep['seconds']:.0f} s")
    print(rep["reading_classifier"])
    print(rep["reading_effects"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
