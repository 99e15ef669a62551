"""FIDTracker: the value it logs is the FID of the generator at that step, best.pt holds the best one,
its state resumes exactly, and it never disturbs training."""

import json
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from course_lib import metrics
from course_lib.core.errors import ConfigError
from course_lib.data import load_embedded_mnist
from course_lib.metrics.errors import WeightsNotFound
from course_lib.metrics.features import PixelExtractor, resolve_extractor
from course_lib.training import TrainConfig, Trainer
from course_lib.training.callbacks.fid_tracker import FIDTracker
from course_lib.training.checkpoint import load_checkpoint, load_generator

SMALL = {
    "model.width": 8,
    "model.latent_dim": 16,
    "optim.batch_size": 16,
    "optim.steps": 6,
    "run.log_every": 2,
    "run.sample_every": 100,
    "run.checkpoint_every": 3,
    "run.n_fixed": 16,
    "run.device": "cpu",
}
TRACK = {
    "every": 3,
    "n_samples": 200,
    "batch_size": 200,
    "extractor": "mnist",
    "reference": "mnist:test",
    "reference_limit": 200,
}


@pytest.fixture(scope="module")
def digits():
    return load_embedded_mnist("train").subset(128)


def _fid_by_hand(generator, n, seed, reference_images):
    """FID from first principles: the same latents, the MNIST classifier's features, np.cov, scipy's sqrtm."""
    extractor = metrics.features.get_extractor("mnist", "cpu")
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    generator.eval()
    with torch.no_grad():
        fake = (generator(z).clamp(-1, 1) + 1) / 2
    f1 = extractor(fake)[0].double().numpy()
    f2 = extractor(reference_images)[0].double().numpy()
    mu1, mu2, s1, s2 = f1.mean(0), f2.mean(0), np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():  # a few never-active ReLU features make the covariances singular
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


def test_tracker_logs_plots_and_keeps_the_best(tmp_path, digits):
    tracker = FIDTracker(**TRACK)
    trainer = Trainer(TrainConfig.from_dict(SMALL), tmp_path, data=digits, callbacks=[tracker], progress=False).train()
    assert [s for s, _ in tracker.history] == [3, 6]
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    logged = [(r["step"], r["fid"]) for r in rows if "fid" in r]
    assert logged == tracker.history
    assert (tmp_path / "fid.png").stat().st_size > 0

    # The final value, recomputed independently from the trained generator.
    reference = load_embedded_mnist("test").images[:200]
    expected = _fid_by_hand(trainer.generator, 200, tracker.seed, reference)
    assert tracker.history[-1][1] == pytest.approx(expected, rel=1e-5, abs=1e-6)

    # best.pt is the generator of the best evaluation: measuring it again gives the same number.
    best_step, best_fid = min(tracker.history, key=lambda sv: sv[1])
    assert (tracker.best_step, tracker.best_fid) == (best_step, best_fid)
    best = tmp_path / "checkpoints" / "best.pt"
    assert load_checkpoint(best)["step"] == best_step
    again = metrics.fid(
        load_generator(best),
        "mnist:test",
        extractor="mnist",
        n_samples=200,
        seed=tracker.seed,
        limit=200,
        batch_size=200,
        progress=False,
    )
    assert again.value == pytest.approx(best_fid, rel=1e-6)

    summary = tracker.summary()
    assert summary["best_fid"] == best_fid and summary["evaluations"] == 2 and summary["last_step"] == 6
    assert "not comparable" in summary["fid_extractor"] and trainer.callback_seconds["fid_tracker"] > 0
    json.dumps(summary)


def test_tracker_from_config_resumes_exactly_and_does_not_change_training(tmp_path, digits):
    cfg = {**SMALL, "callbacks": [{"name": "fid_tracker", **TRACK}]}
    straight = Trainer(TrainConfig.from_dict(cfg), tmp_path / "straight", data=digits, progress=False).train()
    Trainer(TrainConfig.from_dict(cfg), tmp_path / "split", data=digits, progress=False).train(steps=3)
    resumed = Trainer.resume(tmp_path / "split", data=digits, progress=False)
    tracker = next(h for h in resumed.callbacks if isinstance(h, FIDTracker))
    assert [s for s, _ in tracker.history] == [3]  # restored from the checkpoint, not measured again
    resumed.train()
    straight_tracker = next(h for h in straight.callbacks if isinstance(h, FIDTracker))
    assert tracker.history == straight_tracker.history
    assert resumed.history == straight.history

    untracked = Trainer(TrainConfig.from_dict(SMALL), data=digits, progress=False).train()
    for a, b in zip(straight.generator.state_dict().values(), untracked.generator.state_dict().values()):
        assert torch.equal(a, b)  # evaluation drew nothing from the training streams


def test_reference_defaults_to_the_training_images_and_is_cached(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("COURSE_LIB_CACHE", str(tmp_path / "cache"))
    trainer = Trainer(TrainConfig.from_dict({**SMALL, "optim.steps": 2}), data=digits, progress=False).train()
    first = FIDTracker(every=1, n_samples=50, extractor="mnist")
    value = first.measure(trainer)
    expected = metrics.fid(
        trainer.generator, digits.images, extractor="mnist", n_samples=50, seed=first.seed, progress=False
    )
    assert value == pytest.approx(expected.value, rel=1e-6)
    assert len(list((tmp_path / "cache" / "fid_stats").glob("*.npz"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("the reference statistics should come from the cache")

    second = FIDTracker(every=1, n_samples=50, extractor="mnist")
    second._setup(trainer)  # builds the extractor (the generated side is not extracted here)
    monkeypatch.setattr("course_lib.metrics.features.extract_from_source", no_extraction)
    second.reference_stats = None
    second._setup(trainer)
    np.testing.assert_array_equal(second.reference_stats.mu, first.reference_stats.mu)


def test_pixel_extractor_gives_the_closed_form_distance():
    # Shifting every pixel by c (in [0, 1] units) moves the mean of all 192 pooled features by c and
    # leaves the covariance alone: FD = 192 c^2.
    rng = torch.Generator().manual_seed(0)
    a = torch.randint(0, 200, (300, 3, 16, 16), dtype=torch.uint8, generator=rng)
    b = a + 25
    value = metrics.fid(a, b, extractor=PixelExtractor(), progress=False).value
    assert value == pytest.approx(192 * (25 / 255) ** 2, rel=1e-6)
    assert metrics.fid(a, a, extractor=PixelExtractor(), progress=False).value == pytest.approx(0, abs=1e-8)


def test_auto_extractor_without_inception_weights(monkeypatch):
    def missing(*args, **kwargs):
        raise WeightsNotFound("no weights here")

    monkeypatch.setattr("course_lib.metrics.inception.find_inception_weights", missing)
    assert resolve_extractor("auto", "cpu", channels=1).name == "mnist"
    assert resolve_extractor("auto", "cpu", channels=3).name == "pixels"


@pytest.mark.parametrize("bad", [{"every": 0}, {"n_samples": 1}, {"extractor": "vgg"}, {"reference_limit": 1}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match="fid_tracker"):
        FIDTracker(**bad)


def test_bad_callback_settings_in_a_config_are_config_errors(digits):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**SMALL, "callbacks": [{"name": "fid_tracker", "evry": 3}]})
