"""Numbers that a notebook's prose states come from somewhere: a cell, a shipped report, or a listed constant (issue 29).

Every markdown cell of every notebook (both editions: `solutions/` and `notebooks/`) is read for the numbers it states, and each one must be accounted for by one of:

(a) **a cell**: the same literal appears in one of the notebook's code cells. A number the code sets (a sample
    count, a layer width, a step budget, a seed) is a setting the prose repeats, not a measurement. A measured
    number has no place in the markdown at all: a cell prints it (an f-string, or `display(Markdown(...))`), so it
    is an output and never reaches this check.
(b) **a shipped report or config**: the cell links or names `docs/results/NAME/` and NAME's JSON holds the number,
    at the precision the prose gives it (13.8 matches 13.83; a stated percentage matches a fraction times 100, a
    stated number of minutes a number of seconds over 60), or it names `configs/NAME.yaml` and a value of that
    config is the number. The number is then the report's (which says how it was measured) or the recipe's.
(c) **a listed constant**: `CONSTANTS` (any notebook) or `STATED` (one notebook) holds it with its reason: a
    textbook value (D's optimum 1/2, LeakyReLU's 0.2, Adam's 2e-4), a published figure with its citation, or a
    value of the library's that the prose explains. Where the value can be computed (a closed form, the library's
    own default, the shipped file's record), the entry carries a function that computes it, and the test checks
    the prose's number against it at the prose's precision.

What is not a stated number (the rule, so that the check stays usable):
- numbers in code spans, fenced code, LaTeX math, link targets, HTML tags and headings (section numbers);
- list ordinals ("1. " at the start of a line) and references: figure, eq., chapter, section, problem, table,
  notebook, algorithm, exercise, and their ranges and lists ("eq. 15.12-15.13", "problems 15.4 and 15.5"); a year
  (1900-2099, as in "Goodfellow et al. (2014)");
- reading-time estimates ("about 40 minutes of reading": the author's guess, said as one);
- whole numbers up to 12 (counts and sizes the sentence itself defines: "8 modes", "3 seeds", "a 5 × 5 grid") and
  sizes written as shapes or names (the "128" of "128-d", "2-D", "64 × 64", "28x28", "(N, 1, 28, 28)",
  "DCGAN-64").
Everything else (decimals, percentages, whole numbers above 12) is checked. A finding names the notebook, the cell,
the number and its sentence, and says the three ways to account for it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results"
NOTEBOOKS = sorted((REPO / "solutions").glob("*.ipynb")) + sorted((REPO / "notebooks").glob("*.ipynb"))

# (c) constants any notebook may state, each with its reason.
CONSTANTS: dict[str, str] = {
    "0.5": "D's optimum 1/2 where p_data = p_g (Goodfellow et al. 2014), and the accuracy of a coin",
    "0.2": "LeakyReLU's slope in DCGAN's discriminator (Radford et al. 2015)",
    "2e-4": "Adam's learning rate in DCGAN (Radford et al. 2015)",
    "0.999": "Adam's beta2 / an EMA decay in the papers' settings",
    "2048": "Inception-v3's pool3 feature width (FID's features, Heusel et al. 2017)",
    "299": "Inception-v3's input size in pixels",
    "100": "a percentage's whole / the latent size of DCGAN (Radford et al. 2015)",
    "1.0": "a probability's or a ratio's maximum",
    "95%": "the confidence level of every interval the course's reports give (metrics.uncertainty.DEFAULT_LEVEL)",
}


def _two_tail(tau: float) -> float:
    from scipy.stats import norm

    return 2 * norm.cdf(-tau)


def _truncated_std(tau: float) -> float:
    from scipy.stats import truncnorm

    return truncnorm(-tau, tau).std()


def _chi_quantile(q: float) -> float:
    from scipy.stats import chi

    return chi.ppf(q, 100)


def _w1_of_the_two_gaussians() -> float:
    """W1(N(0, 1.5^2), N(1, 0.5^2)) = the area between the two CDFs (notebook 03's example), by scipy's quadrature."""
    from scipy.integrate import quad
    from scipy.stats import norm

    return quad(lambda x: abs(norm.cdf(x, 0, 1.5) - norm.cdf(x, 1, 0.5)), -20, 20, points=[0.0, 1.0], limit=200)[0]


def _mnist_classifier_test_accuracy() -> float:
    import torch

    from course_lib.metrics.mnist_classifier import ASSET

    return torch.load(ASSET, map_location="cpu", weights_only=False)["meta"]["test_accuracy"]


def _embedded_mnist_sizes() -> list[float]:
    import numpy as np

    from course_lib.data import EMBEDDED_MNIST

    with np.load(EMBEDDED_MNIST) as arrays:
        return [float(len(arrays[name])) for name in arrays.files if "label" not in name]


def _direction_samples() -> float:
    from course_lib.latent.pretrained import pretrained_info

    method = pretrained_info("celeba-dcgan")["directions_method"]
    return float(method.split(" samples")[0].replace(",", ""))


def _mixture(name: str, field: str) -> float:
    from course_lib.course.toy import mixtures

    mixture = getattr(mixtures, f"{name}_mixture")()
    return float(mixture.n_modes if field == "modes" else getattr(mixture, field))


CELEBA_IMAGES = "CelebA's number of aligned images (Liu et al. 2015)"
# (c) numbers one notebook states, by the notebook's stem: {number as written: reason} or
# {number as written: (reason, function computing the value, or a list of values, the number must round from)}.
STATED: dict[str, dict] = {
    "00_welcome": {
        "10,000": ("the embedded MNIST subset's training split", _embedded_mnist_sizes),
        "2,000": ("the embedded MNIST subset's test split", _embedded_mnist_sizes),
    },
    "02_gan_loss_and_divergences": {
        "256": "the hidden width of the small MLP GAN the sentence describes (the cell's models are built with it)",
    },
    "03_wasserstein_distance": {
        "16": "the 4 × 4 entries of a plan between two 4-bin histograms (the sentence's own arithmetic)",
        "1.17": ("W1 between the cell's two Gaussians, in closed form", _w1_of_the_two_gaussians),
    },
    "04_wgan_toy": {
        "0.05": ("the ring's standard deviation (toy.ring_mixture)", lambda: _mixture("ring", "std")),
        "0.1": "the grid's standard deviation (toy.grid_mixture), and a clipping value to try",
        "25": ("the grid's number of modes (toy.grid_mixture)", lambda: _mixture("grid", "modes")),
        "0.02": "the mode width of the papers' 2-D mixtures (Metz et al. 2017; Srivastava et al. 2017)",
        "62": ("0.2 · N/K with N = 2500 samples and the ring's K = 8 modes", lambda: 0.2 * 2500 / 8),
        "24": "4 methods × 2 mixtures × 3 seeds: the trainings of the cell the sentence describes",
        "0.01": "WGAN's weight-clipping constant c (Arjovsky et al. 2017)",
        "0.001": "a clipping value the 'try' list suggests, not a result",
    },
    "10_truncation_and_interpolation": {
        "64": "DCGAN-64: the model's name (64 × 64 images)",
        "4.55 %": ("2Φ(-τ) at τ = 2", lambda: _two_tail(2.0)),
        "31.7 %": ("2Φ(-τ) at τ = 1", lambda: _two_tail(1.0)),
        "61.7 %": ("2Φ(-τ) at τ = 0.5", lambda: _two_tail(0.5)),
        "96.8 %": ("2Φ(-τ) at τ = 0.04", lambda: _two_tail(0.04)),
        "99.05 %": ("1 - (1 - 2Φ(-2))^100", lambda: 1 - (1 - _two_tail(2.0)) ** 100),
        "99 %": ("1 - (1 - 2Φ(-2))^100", lambda: 1 - (1 - _two_tail(2.0)) ** 100),
        "8.6": ("the 2.5 % quantile of ||z||, chi with 100 degrees of freedom", lambda: _chi_quantile(0.025)),
        "11.4": ("the 97.5 % quantile of ||z||, chi with 100 degrees of freedom", lambda: _chi_quantile(0.975)),
        "10,000": ("the shipped generator's record of how its directions were built", _direction_samples),
        "0.28": ("the standard deviation of N(0, 1) truncated to [-0.5, 0.5]", lambda: _truncated_std(0.5)),
    },
    "11_diversity_controller": {
        "5.7": "the seed document's table, quoted as its claims (no code, no seeds)",
        "0.6": "the seed document's table, quoted as its claims (no code, no seeds)",
        "3.7125": "the seed document's table, quoted as its claims (no code, no seeds)",
        "0.5266": "the seed document's table, quoted as its claims (no code, no seeds)",
    },
    "12_conditional_gans": {
        "99.4%": ("the shipped MNIST classifier's test accuracy, as its file records", _mnist_classifier_test_accuracy),
        "15%": "chance under the best code-to-digit matching (tests/test_conditional.py measured 0.10 untrained)",
        "5%": "InfoGAN's reported MNIST error (Chen et al. 2016)",
        "750": ("the steps tests/test_conditional.py trains the infogan preset for", lambda: _infogan_test_steps()),
    },
    "14_stylegan_and_progressive": {
        "90%": "StyleGAN's style-mixing probability (Karras et al. 2019; course_lib.nn.models style_mixing=0.9)",
        "1e-3": "the main job's learning rate (preset mnist-main-job), named as such",
    },
    "09_dcgan_celeba": {
        "202,599": CELEBA_IMAGES,
        "2.5": (
            "the uint8 cache of the 202,599 faces at 64 × 64 × 3 bytes, in GB",
            lambda: 202_599 * 64 * 64 * 3 / 1e9,
        ),
        "197": "the last row of CelebA's central 178-pixel crop (rows 20-197, course_lib.data.datasets.load_celeba)",
    },
}

REFERENCE_WORDS = (
    r"(?:figures?|figs?\.|eqs?\.|equations?|chapters?|sections?|problems?|tables?|notebooks?|steps? of the list|"
    r"algorithm|exercise)"
)
NUMBER = r"\d[\d,]*(?:\.\d+)?"
# A reference and the numbers that follow it: "figure 15.2", "eq. 15.12-15.13", "problems 15.4 and 15.5".
REFERENCE = re.compile(rf"\b{REFERENCE_WORDS}\s+{NUMBER}(?:\s*(?:[-–,]|and|or)\s*{NUMBER})*(?:\.\d+)*", re.IGNORECASE)
YEAR = re.compile(r"(?<![\d.,])(?:19|20)\d\d(?![\d.,]\d)")
READING_TIME = re.compile(rf"about {NUMBER} minutes of reading")
SHAPE = re.compile(
    rf"{NUMBER}\s*(?:-[dD]\b|-bit\b|\s*[×x]\s*{NUMBER}|-dimensional\b)"  # 128-d, 2-D, 64 × 64
    r"|\((?=[^()]*\b[A-Za-z_]\w*\b)[\w+ ]+(?:,\s*[\w+ ]+)+\)"  # a shape tuple with a name in it: (N, 1, 28, 28)
    rf"|\b[A-Za-z]+-{NUMBER}"  # a model's name: DCGAN-64
)
STATED_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?:\s?%)?(?![\w])")
REPORT_LINK = re.compile(r"docs/results/([A-Za-z0-9_]+)")
CONFIG_LINK = re.compile(r"configs/([A-Za-z0-9_]+\.ya?ml)")


def prose(markdown: str) -> str:
    """The markdown as sentences: code, math, link targets, tags, headings and ordinals blanked out."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"^\s*#+ .*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*\d+\.\s", " ", text, flags=re.M)
    for pattern in (REFERENCE, YEAR, READING_TIME, SHAPE):
        text = pattern.sub(" ", text)
    return text


def value_of(written: str) -> tuple[float, int, bool]:
    """(value, decimals, is_percentage) of a number as written: "1,000" -> (1000, 0, False), "13.8 %" -> (13.8, 1, True)."""
    percent = written.rstrip().endswith("%")
    digits = written.rstrip("% ").replace(",", "").replace("−", "-").lstrip("+")
    decimals = len(digits.split(".")[1].split("e")[0]) if "." in digits else 0
    return float(digits), decimals, percent


def stated_numbers(markdown: str) -> list[tuple[str, str]]:
    """[(number as written, its context)] for every stated number of one markdown cell, by the rule above."""
    text = prose(markdown)
    found = []
    for match in STATED_NUMBER.finditer(text):
        written = match.group().strip()
        value, decimals, percent = value_of(written)
        if decimals == 0 and not percent and "e" not in written and abs(value) <= 12:
            continue
        context = " ".join(text[max(0, match.start() - 60) : match.end() + 40].split())
        found.append((written, context))
    return found


def code_literals(notebook: dict) -> set[float]:
    """Every numeric literal in the notebook's code cells (1_000 and 1000 alike)."""
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    literals = set()
    for token in re.findall(r"(?<![\w.])\d[\d_]*(?:\.\d+)?(?:e[-+]?\d+)?", code):
        literals.add(float(token.replace("_", "")))
    return literals


def json_numbers(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)] if math.isfinite(value) else []
    if isinstance(value, dict):
        return [n for v in value.values() for n in json_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in json_numbers(v)]
    return []


_REPORT_NUMBERS: dict[str, list[float]] = {}


def report_numbers(name: str) -> list[float]:
    """Every number in the JSON files of docs/results/NAME/ (its report.json and any others it ships)."""
    if name not in _REPORT_NUMBERS:
        numbers = []
        for path in sorted((RESULTS / name).rglob("*.json")):
            numbers += json_numbers(json.loads(path.read_text(encoding="utf-8")))
        _REPORT_NUMBERS[name] = numbers
    return _REPORT_NUMBERS[name]


_CONFIG_NUMBERS: dict[str, list[float]] = {}


def config_numbers(name: str) -> list[float]:
    """Every number among the values of configs/NAME (YAML; comments are not values)."""
    if name not in _CONFIG_NUMBERS:
        import yaml

        _CONFIG_NUMBERS[name] = json_numbers(yaml.safe_load((REPO / "configs" / name).read_text(encoding="utf-8")))
    return _CONFIG_NUMBERS[name]


def matches(written: str, candidates) -> bool:
    """Does one of `candidates` (raw numbers) round to `written` at its stated precision (also x100 and /60)?"""
    value, decimals, percent = value_of(written)
    for raw in candidates:
        for scaled in (raw, raw * 100, raw / 60, raw / 3600) if not percent else (raw * 100, raw):
            if round(scaled, decimals) == round(value, decimals) or (
                decimals == 0 and abs(scaled - value) < 0.5 and abs(value) > 12
            ):
                return True
    return False


def _key(written: str) -> str:
    """A number as written, without its thousands separators and spaces: "4.55 %" and "4.55%" are one entry."""
    return written.replace(",", "").replace(" ", "")


def _infogan_test_steps() -> float:
    source = (REPO / "tests" / "test_conditional.py").read_text(encoding="utf-8")
    return float(re.search(r'"preset": "infogan", "optim.steps": (\d+)', source).group(1))


def unaccounted(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    literals = code_literals(notebook)
    allowed = {_key(written) for written in {**CONSTANTS, **STATED.get(path.stem, {})}}
    findings = []
    for written, entry in STATED.get(path.stem, {}).items():
        if isinstance(entry, tuple):  # a value that can be computed: the prose must state it right
            computed = entry[1]()
            values = computed if isinstance(computed, list) else [computed]
            if not matches(written, values):
                findings.append(f"{path.name}: STATED says {written!r} is {entry[0]}, but that is {values}")
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        reports = [name for name in REPORT_LINK.findall(source) if (RESULTS / name).is_dir()]
        configs = [name for name in CONFIG_LINK.findall(source) if (REPO / "configs" / name).is_file()]
        for written, context in stated_numbers(source):
            value, _, _ = value_of(written)
            if _key(written) in allowed or value in literals:
                continue
            if any(matches(written, report_numbers(name)) for name in reports):
                continue
            if any(matches(written, config_numbers(name)) for name in configs):
                continue
            findings.append(f"{path.parent.name}/{path.name} cell {index}: {written!r} in '... {context} ...'")
    return findings


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_number_the_prose_states_comes_from_a_cell_a_report_or_a_listed_constant(path):
    findings = unaccounted(path)
    assert not findings, (
        "numbers in the prose that no cell, shipped report or listed constant accounts for (print it from a cell, "
        "cite the docs/results report whose JSON holds it, or add it to STATED with its reason):\n  "
        + "\n  ".join(findings)
    )


def test_the_rule_reads_numbers_as_documented():
    text = (
        "In figure 15.2 (Goodfellow et al. 2014), eq. 15.12-15.13: 8 modes of a 5 × 5 grid, 128-d features, "
        "about 40 minutes of reading. FID fell to 13.8 and 83 % of samples, 1,000 steps. `x = 0.37` $0.91$"
    )
    assert [w for w, _ in stated_numbers(text)] == ["13.8", "83 %", "1,000"]
    assert matches("13.8", [13.83]) and not matches("13.8", [13.9])
    assert matches("83 %", [0.8312]) and matches("11.4", [684.2]) and not matches("83 %", [0.79])


def test_a_number_nothing_accounts_for_is_reported_and_a_cited_or_set_one_is_not(tmp_path):
    def notebook(markdown: str, code: str) -> Path:
        cells = [
            {"cell_type": "markdown", "metadata": {}, "source": [markdown]},
            {"cell_type": "code", "metadata": {}, "source": [code], "outputs": [], "execution_count": None},
        ]
        path = tmp_path / "99_probe.ipynb"
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        return path

    findings = unaccounted(notebook("FID fell to 13.8 after 600 steps.", "steps = 600"))
    assert len(findings) == 1 and "'13.8'" in findings[0]  # 600 is set by the code; 13.8 comes from nowhere
    # the same figure, cited from a shipped report whose JSON holds it at that precision (notebook 10's FID 11.35)
    cited = "FID 11.35 ([report](../docs/results/mnist_truncation/report.md))."
    assert unaccounted(notebook(cited, "")) == []
    assert len(unaccounted(notebook(cited.replace("11.35", "11.53"), ""))) == 1
