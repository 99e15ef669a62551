"""course_lib.latent.pretrained: the shipped generators load (sha256-checked) and draw digits and faces; the one rule
for finding notebook 09's CelebA run; notebook 09's recipe choice; `sample --pretrained`."""

import dataclasses

import numpy as np
import pytest
import torch

from course_lib.cli import main
from course_lib.core.errors import CheckpointError, ConfigError
from course_lib.latent import sample_latents
from course_lib.latent.pretrained import (
    CELEBA_RUN_ENV,
    PRETRAINED,
    celeba_images_available,
    celeba_recipe,
    celeba_run_dir,
    check_face_generator,
    classify_digits,
    evaluate_generator,
    file_sha256,
    find_celeba_checkpoint,
    generate_uint8,
    load_pretrained,
    measure_seconds_per_step,
    notebook_generator,
    pretrained_directions,
    pretrained_info,
    pretrained_path,
)
from course_lib.nn.models import build_models
from course_lib.training import checkpoint as ckpt_io
from course_lib.training.checkpoint import load_generator


def test_shipped_generator_is_small_and_documented():
    path = pretrained_path("mnist-dcgan")
    assert path.stat().st_size < 4_000_000
    info = pretrained_info("mnist-dcgan")
    assert info["config"]["model"]["arch"] == "dcgan" and info["config"]["data"]["image_size"] == 28
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


def _fake_celeba_run(run_dir, width=8, channels=3, image_size=64):
    """A tiny DCGAN checkpoint in the layout a training run leaves (<run>/checkpoints/last.pt)."""
    generator, _ = build_models("dcgan", 16, image_size, channels, width)
    config = {
        "data": {"dataset": "celeba", "image_size": image_size},
        "model": {"arch": "dcgan", "latent_dim": 16, "width": width},
    }
    path = run_dir / "checkpoints" / "last.pt"
    ckpt_io.save_atomic(
        {
            "format": ckpt_io.FORMAT,
            "config": config,
            "channels": channels,
            "step": 1,
            "generator": generator.state_dict(),
            "discriminator": None,
        },
        path,
    )
    return path


def test_one_rule_finds_the_run_notebook_09_writes(tmp_path, monkeypatch, capsys):
    """Notebook 09 trains into celeba_run_dir(); notebook 10 finds exactly that run, and only that one."""
    monkeypatch.setenv(CELEBA_RUN_ENV, str(tmp_path / "my_faces"))
    assert celeba_run_dir() == tmp_path / "my_faces"
    assert find_celeba_checkpoint() is None
    generator, description = notebook_generator()
    assert (generator.channels, generator.image_size) == (3, 64) and "celeba-dcgan" in description
    assert "no CelebA run from notebook 09" in capsys.readouterr().out

    _fake_celeba_run(tmp_path / "elsewhere")  # another run folder is not picked up: one rule, no guessing
    assert find_celeba_checkpoint() is None
    written = _fake_celeba_run(celeba_run_dir())
    assert find_celeba_checkpoint() == written
    generator, description = notebook_generator()
    assert generator.latent_dim == 16 and str(written) in description
    assert find_celeba_checkpoint(tmp_path / "elsewhere") == tmp_path / "elsewhere" / "checkpoints" / "last.pt"

    monkeypatch.delenv(CELEBA_RUN_ENV)
    assert celeba_run_dir().parts[-2:] == ("runs", "celeba64")


def test_a_digit_or_damaged_checkpoint_falls_back_to_the_shipped_faces(tmp_path, capsys):
    digits = tmp_path / "digits"
    _fake_celeba_run(digits, channels=1, image_size=28)
    generator, description = notebook_generator(run_dir=digits)
    assert generator.channels == 3 and "celeba-dcgan" in description
    out = capsys.readouterr().out
    assert "1x28x28" in out and out.count("\n") == 1

    small = tmp_path / "small"
    _fake_celeba_run(small, image_size=32)
    assert notebook_generator(run_dir=small)[0].image_size == 32  # any RGB size drives the sliders...
    generator, _ = notebook_generator(run_dir=small, image_size=64)  # ...but not a 64x64 measurement
    assert generator.image_size == 64 and "3x32x32" in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="3x64x64"):
        check_face_generator(load_generator(small / "checkpoints" / "last.pt"), 64)

    broken = tmp_path / "broken"
    _fake_celeba_run(broken).write_bytes(b"not a checkpoint")
    assert "celeba-dcgan" in notebook_generator(run_dir=broken)[1]
    assert "cannot use" in capsys.readouterr().out


def _shipped_copy(tmp_path, monkeypatch, name, data: bytes):
    path = tmp_path / f"{name}.pt"
    path.write_bytes(data)
    monkeypatch.setitem(PRETRAINED, name, dataclasses.replace(PRETRAINED[name], path=path))
    return path


@pytest.mark.parametrize("damage", ["flip a byte", "truncate"])
def test_a_damaged_asset_fails_in_one_line(tmp_path, monkeypatch, capsys, damage):
    original = PRETRAINED["mnist-dcgan"].path.read_bytes()
    data = bytearray(original)
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 3]
    path = _shipped_copy(tmp_path, monkeypatch, "mnist-dcgan", bytes(data))
    with pytest.raises(CheckpointError, match="damaged") as err:
        load_pretrained("mnist-dcgan")
    assert "\n" not in str(err.value) and "reinstall" in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == bytes(data)  # nothing overwritten
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "4", "--out", str(tmp_path / "x.png")]) == 2
    assert "damaged" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    path.write_bytes(original)  # repaired: loads again
    assert load_pretrained("mnist-dcgan").image_size == 28


def test_recorded_sha256_matches_the_shipped_files():
    for entry in PRETRAINED.values():
        assert file_sha256(entry.path) == entry.sha256, entry.name


def test_shipped_face_generator_draws_varied_rgb_faces():
    generator = load_pretrained("celeba-dcgan")
    assert (generator.channels, generator.image_size, generator.latent_dim) == (3, 64, 100)
    assert PRETRAINED["celeba-dcgan"].path.stat().st_size < 8_000_000
    images = generate_uint8(generator, sample_latents(32, 100, seed=0)).float()
    assert images.shape == (32, 3, 64, 64)
    # Not a collapsed or blank generator: samples differ from each other, and each has contrast.
    assert images.std(dim=0).mean() > 20 and images.flatten(1).std(dim=1).min() > 10
    info = pretrained_info("celeba-dcgan")
    assert info["script"] == "scripts/train_pretrained_celeba_dcgan.py" and info["config"]["data"]["root"] is None
    assert info["data"]["images"] == 20_000 and len(info["data"]["file_list_sha256"]) == 64
    assert info["training"]["steps"] == info["step"] > 0 and info["training"]["train_seconds"] > 0


def test_shipped_attribute_directions_move_the_attribute():
    directions = pretrained_directions("celeba-dcgan")
    assert {"Smiling", "Eyeglasses", "Male"} <= set(directions)
    assert all(d.shape == (100,) and torch.isfinite(d).all() and d.norm() > 0 for d in directions.values())
    check = pretrained_info("celeba-dcgan")["directions_check"]["effect_on_fresh_samples"]
    for attribute in ("Smiling", "Male"):  # measured when the asset was built; see the assets README
        rates = check[attribute]["with_it_after_moving_alpha"]
        assert rates["-1.5"] < rates["+0.0"] < rates["+1.5"], (attribute, rates)
    with pytest.raises(CheckpointError, match="no latent directions"):
        pretrained_directions("mnist-dcgan")


def test_notebook_09_recipe_follows_the_device(tmp_path):
    assert celeba_recipe("cpu")[0] == "cpu" and celeba_recipe(torch.device("cuda"))[0] == "gpu"
    assert celeba_recipe("mps")[0] == "cpu"
    for kind in ("cpu", "gpu"):
        path = celeba_recipe("cuda" if kind == "gpu" else "cpu")[1]
        assert path.is_file(), path
    folder = tmp_path / "celeba" / "img_align_celeba"
    assert not celeba_images_available(tmp_path)
    folder.mkdir(parents=True)
    assert not celeba_images_available(tmp_path)  # an empty folder is not CelebA
    (folder / "000001.jpg").write_bytes(b"x")
    assert celeba_images_available(tmp_path)


def test_time_estimate_runs_a_throwaway_trainer(tmp_path):
    from course_lib.data import ImageData
    from course_lib.training import TrainConfig

    data = ImageData(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), None, "noise", "random images")
    config = TrainConfig(
        data={"dataset": "folder", "image_size": 32},
        model={"width": 8},
        optim={"batch_size": 8, "steps": 100},
        run={"device": "cpu"},
    )
    seconds = measure_seconds_per_step(config, data, probe_steps=2)
    assert 0 < seconds < 30
    assert not any(tmp_path.iterdir())  # wrote nothing
    with pytest.raises(ConfigError):
        measure_seconds_per_step(config, data, probe_steps=0)


def test_cli_sample_pretrained(tmp_path):
    out = tmp_path / "s.npz"
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "12", "--out", str(out), "--device", "cpu"]) == 0
    plain = np.load(out)["images"]
    assert plain.shape == (12, 28, 28, 1) and plain.dtype == np.uint8
    # A threshold no component reaches changes nothing; a tight one changes the samples, within |z_i| <= tau.
    assert (
        main(
            [
                "sample",
                "--pretrained",
                "mnist-dcgan",
                "--n",
                "12",
                "--out",
                str(out),
                "--truncation",
                "50",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert np.array_equal(np.load(out)["images"], plain)
    assert (
        main(
            [
                "sample",
                "--pretrained",
                "mnist-dcgan",
                "--n",
                "12",
                "--out",
                str(out),
                "--truncation",
                "0.5",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    truncated = np.load(out)["images"]
    generator = load_pretrained("mnist-dcgan")
    expected = generate_uint8(generator, sample_latents(12, 100, tau=0.5, seed=0)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(truncated, expected) and not np.array_equal(truncated, plain)
    assert main(["sample", "--pretrained", "mnist-dcgan", "--n", "9", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()


def test_cli_samples_the_shipped_faces(tmp_path):
    out = tmp_path / "faces.npz"
    assert main(["sample", "--pretrained", "celeba-dcgan", "--n", "4", "--out", str(out), "--device", "cpu"]) == 0
    faces = np.load(out)["images"]
    expected = (
        generate_uint8(load_pretrained("celeba-dcgan"), sample_latents(4, 100, seed=0)).permute(0, 2, 3, 1).numpy()
    )
    assert faces.shape == (4, 64, 64, 3) and np.array_equal(faces, expected)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n", "4"], "nothing to sample"),
        (["CKPT", "--pretrained", "mnist-dcgan", "--n", "4"], "not both"),
        (["--pretrained", "nope", "--n", "4"], "no pretrained generator"),
        (["--pretrained", "mnist-dcgan", "--truncation", "0", "--n", "4"], "tau"),
    ],
)
def test_cli_sample_pretrained_errors(tmp_path, capsys, argv, message):
    argv = [str(tmp_path) if a == "CKPT" else a for a in argv]
    assert main(["sample", *argv, "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err
