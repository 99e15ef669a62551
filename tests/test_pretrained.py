"""course_lib.pretrained: the shipped MNIST DCGAN loads and draws digits; CelebA pickup; `sample --pretrained`."""
import numpy as np
import pytest
import torch

from course_lib import checkpoint as ckpt_io
from course_lib.checkpoint import load_generator
from course_lib.cli import main
from course_lib.errors import CheckpointError
from course_lib.latent import sample_latents
from course_lib.models import build_models
from course_lib.pretrained import (
    CELEBA_ENV,
    PRETRAINED,
    classify_digits,
    evaluate_generator,
    find_celeba_checkpoint,
    generate_uint8,
    load_pretrained,
    notebook_generator,
    pretrained_info,
    pretrained_path,
)


def test_shipped_generator_is_small_and_documented():
    path = pretrained_path("mnist-dcgan")
    assert path.stat().st_size < 4_000_000
    info = pretrained_info("mnist-dcgan")
    assert info["config"]["arch"] == "dcgan" and info["config"]["image_size"] == 28
    assert info["script"] == "scripts/train_pretrained_mnist_dcgan.py"
    assert info["data_sha256"] and all(len(v) == 64 for v in info["data_sha256"].values())
    assert info["evaluation"]["recognised_0.5"] >= 0.85 and info["evaluation"]["n_samples"] == 10_000


def test_shipped_generator_loads_like_any_checkpoint():
    generator = load_pretrained("mnist-dcgan")
    same = load_generator(PRETRAINED["mnist-dcgan"].path)
    z = sample_latents(8, generator.latent_dim, seed=0)
    assert not generator.training
    with torch.no_grad():
        images = generator(z)
    assert images.shape == (8, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    with torch.no_grad():
        assert torch.equal(images, same(z))


def test_shipped_generator_draws_digits_the_classifier_recognises():
    """Most of a batch is recognised (measured on 10,000 samples: 94% at p >= 0.5, 63% at p >= 0.9), and every digit appears."""
    generator = load_pretrained("mnist-dcgan")
    images = generate_uint8(generator, sample_latents(500, generator.latent_dim, seed=7))
    labels, confidence = classify_digits(images)
    for threshold, least in ((0.5, 0.85), (0.9, 0.5)):
        recognised = float((confidence >= threshold).double().mean())
        assert recognised >= least, f"only {recognised:.1%} of 500 samples recognised with probability >= {threshold}"
    counts = torch.bincount(labels[confidence >= 0.5], minlength=10)
    assert (counts >= 5).all(), f"digits (nearly) missing from 500 samples: {counts.tolist()}"  # no class dropped


def test_evaluate_generator_agrees_with_the_metrics_package():
    from course_lib import metrics

    generator = load_pretrained("mnist-dcgan")
    real = metrics.extract_features("mnist:test", "mnist", limit=300, progress=False, device="cpu")
    result = evaluate_generator(generator, 300, seed=2, tau=1.5, reference_features=real)
    images = generate_uint8(generator, sample_latents(300, 100, tau=1.5, seed=2))
    assert result["fid_mnist"] == pytest.approx(float(metrics.fid(images, real, extractor="mnist", progress=False)))
    pr = metrics.precision_recall(images, real, extractor="mnist", progress=False)
    assert (result["precision"], result["recall"]) == pytest.approx((pr.precision, pr.recall))
    _, confidence = classify_digits(images)
    assert result["recognised_0.9"] == pytest.approx(float((confidence >= 0.9).double().mean()))
    assert sum(result["digit_histogram"]) == 300 and result["tau"] == 1.5


def test_unknown_or_missing_pretrained_name():
    with pytest.raises(CheckpointError, match="mnist-dcgan"):
        load_pretrained("celeba-stylegan")


def _fake_celeba_run(root, name="celeba", width=8):
    """A tiny DCGAN-64 checkpoint in the layout notebook 09 leaves (runs/<name>/checkpoints/last.pt)."""
    generator, _ = build_models("dcgan", 16, 64, 3, width)
    config = {"arch": "dcgan", "latent_dim": 16, "image_size": 64, "channels": 3, "width": width, "dataset": "celeba"}
    path = root / "runs" / name / "checkpoints" / "last.pt"
    ckpt_io.save_atomic({"format": ckpt_io.FORMAT, "config": config, "step": 1, "generator": generator.state_dict(),
                         "discriminator": None}, path)
    return path


def test_celeba_checkpoint_is_picked_up(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(CELEBA_ENV, raising=False)
    assert find_celeba_checkpoint([tmp_path]) is None
    generator, description = notebook_generator(bases=[tmp_path])
    assert generator.image_size == 28 and "MNIST" in description
    assert "no CelebA checkpoint" in capsys.readouterr().out

    older = _fake_celeba_run(tmp_path, "celeba")
    newer = _fake_celeba_run(tmp_path, "celeba_long")
    import os
    os.utime(older, (1, 1))
    assert find_celeba_checkpoint([tmp_path]) == newer
    generator, description = notebook_generator(bases=[tmp_path])
    assert generator.image_size == 64 and str(newer) in description

    monkeypatch.setenv(CELEBA_ENV, str(older.parent.parent))  # a run folder works too
    assert find_celeba_checkpoint([tmp_path]) == older
    monkeypatch.setenv(CELEBA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError):
        find_celeba_checkpoint([tmp_path])


def test_cli_sample_pretrained(tmp_path):
    out = tmp_path / "s.npz"
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "12", "--out", str(out), "--device", "cpu"]) == 0
    plain = np.load(out)["images"]
    assert plain.shape == (12, 28, 28, 1) and plain.dtype == np.uint8
    # A threshold no component reaches changes nothing; a tight one changes the samples, within |z_i| <= tau.
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "12", "--out", str(out), "--truncation", "50",
                 "--device", "cpu"]) == 0
    assert np.array_equal(np.load(out)["images"], plain)
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "12", "--out", str(out), "--truncation", "0.5",
                 "--device", "cpu"]) == 0
    truncated = np.load(out)["images"]
    generator = load_pretrained("mnist-dcgan")
    expected = generate_uint8(generator, sample_latents(12, 100, tau=0.5, seed=0)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(truncated, expected) and not np.array_equal(truncated, plain)
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--n", "4"], "nothing to sample"),
    (["CKPT", "--pretrained", "mnist-dcgan", "--n", "4"], "not both"),
    (["--pretrained", "nope", "--n", "4"], "no pretrained generator"),
    (["--pretrained", "mnist-dcgan", "--truncation", "0", "--n", "4"], "tau"),
])
def test_cli_sample_pretrained_errors(tmp_path, capsys, argv, message):
    argv = [str(tmp_path) if a == "CKPT" else a for a in argv]
    assert main(["sample", *argv, "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err
