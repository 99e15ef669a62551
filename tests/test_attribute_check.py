"""course_lib.latent.attribute_check: classifier scores that a constant answer cannot fake, decorrelated directions."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from course_lib.core.errors import DataError
from course_lib.latent.attribute_check import binary_scores, bootstrap_interval, decorrelated_direction, roc_auc


def test_auc_is_the_mann_whitney_statistic_ties_included():
    rng = np.random.default_rng(0)
    truth = rng.random(300) < 0.2
    scores = np.round(rng.normal(truth * 0.8, 1.0), 1)  # rounded: many ties
    u = mannwhitneyu(scores[truth], scores[~truth], alternative="two-sided").statistic
    assert roc_auc(scores, truth) == pytest.approx(u / (truth.sum() * (~truth).sum()), rel=1e-12)
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0 and roc_auc([0.9, 0.1], [False, True]) == 0.0


def test_an_always_no_classifier_is_92_percent_accurate_and_no_better_than_chance():
    truth = np.array([True] * 8 + [False] * 92)  # Eyeglasses: 8% of faces
    scores = binary_scores(np.full(100, 0.1), truth)
    assert scores["accuracy"] == pytest.approx(0.92) == scores["majority_baseline_accuracy"]
    assert scores["balanced_accuracy"] == 0.5 and scores["auc"] == 0.5
    assert scores["true_positive_rate"] == 0.0 and scores["true_negative_rate"] == 1.0


def test_balanced_accuracy_is_the_mean_of_the_two_rates():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    probs = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1])  # TPR 3/4, TNR 5/6
    assert binary_scores(probs, truth)["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    with pytest.raises(DataError, match="both with and without"):
        binary_scores(probs, np.ones(10, bool))


def test_bootstrap_interval_covers_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    wide = bootstrap_interval(lambda a: float(np.mean(a)), rng.random(50) < 0.3)
    narrow = bootstrap_interval(lambda a: float(np.mean(a)), rng.random(5000) < 0.3)
    assert wide[0] < 0.3 < wide[1] and narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5


def test_decorrelated_direction_is_orthogonal_to_the_others_and_keeps_its_length():
    g = torch.Generator().manual_seed(0)
    others = [torch.randn(100, generator=g) for _ in range(3)]
    d = others[0] * 0.7 + torch.randn(100, generator=g)
    out = decorrelated_direction(d, others)
    assert out.norm() == pytest.approx(float(d.norm()), rel=1e-5)
    for o in others:
        assert abs(float(torch.dot(out, o))) < 1e-4 * float(out.norm() * o.norm())
    with pytest.raises(DataError, match="span of the others"):
        decorrelated_direction(others[0] + others[1], others)


def test_balanced_threshold_splits_where_both_error_rates_are_lowest():
    from course_lib.latent.attribute_check import balanced_threshold

    assert balanced_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == pytest.approx(0.25)
    rare = np.array([0.02] * 90 + [0.3] * 10)  # a rare attribute whose p never reaches 0.5
    truth = np.array([False] * 90 + [True] * 10)
    t = balanced_threshold(rare, truth)
    assert 0.02 <= t < 0.3 and binary_scores(rare, truth, threshold=t)["balanced_accuracy"] == 1.0


def test_the_shipped_attribute_check_is_the_report_and_its_sentences_come_from_its_numbers():
    import importlib.util
    import json

    REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: the script and its report live there
    from course_lib.latent.pretrained import attribute_check, pretrained_directions

    report_file = REPO_ROOT / "docs" / "results" / "celeba_attribute_directions" / "report.json"
    script = REPO_ROOT / "scripts" / "check_celeba_attribute_directions.py"
    spec = importlib.util.spec_from_file_location("attribute_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report, shipped = json.loads(report_file.read_text()), attribute_check()
    for key in module.ASSET_KEYS:
        if key != "decorrelated_directions":
            assert shipped[key] == report[key], key
    assert (shipped["reading_classifier"], shipped["reading_effects"]) == module.readings(report)
    directions = pretrained_directions("celeba-dcgan")
    assert set(shipped["decorrelated_directions"]) == set(directions)
    for name, d in shipped["decorrelated_directions"].items():
        others = [o for other, o in directions.items() if other != name]
        assert torch.allclose(d, decorrelated_direction(directions[name], others), atol=1e-5)
    for kind in ("shipped_recipe", "balanced"):  # every attribute, both classifiers, on the same held-out faces
        assert {s["n"] for s in report["held_out"][kind].values()} == {report["held_out_faces"]}


def test_the_shipped_classifier_reproduces_the_shipped_measurement_of_a_direction():
    """Notebook 10 counts the faces on screen with this classifier: it must be the one that made the table."""
    from course_lib.latent import apply_direction, sample_latents
    from course_lib.latent.pretrained import (
        attribute_check,
        attribute_classifier,
        generate_uint8,
        load_pretrained,
        pretrained_directions,
    )

    shipped, judge = attribute_check(), attribute_classifier()
    assert judge.thresholds == shipped["thresholds"]["balanced"]
    generator = load_pretrained("celeba-dcgan")
    fresh = sample_latents(shipped["fresh_samples"], generator.latent_dim, seed=12)  # the script's fresh samples
    moved = apply_direction(fresh, pretrained_directions("celeba-dcgan")["Eyeglasses"], 1.5)
    said = judge(torch.cat([generate_uint8(generator, part) for part in moved.split(250)]))
    expected = shipped["effects"]["shipped"]["Eyeglasses"]["+1.5"]
    for attribute, rate in expected.items():
        assert float(said[attribute].float().mean()) == pytest.approx(rate, abs=0.005), attribute
