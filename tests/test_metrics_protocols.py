"""FID in the literature's conventions: clean-fid's resizing modes against clean-fid's own resize functions, and
reference statistics in pytorch-fid's `.npz` layout against `python -m pytorch_fid`.

Nothing here needs the real Inception weights: the resize tests compare network inputs, and the FID tests use
random Inception weights (`random_inception_weights`) or cheap extractors; no test downloads anything.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.inception import PREPROCESSING, preprocess
from course_lib.metrics.resize import DESCRIPTIONS, canonical_mode

cleanfid_resize = pytest.importorskip("cleanfid.resize", reason="needs the clean-fid package (dev extra)")


def _images(seed: int, n: int, h: int, w: int, channels: int = 3) -> np.ndarray:
    """uint8 images (N, H, W, C) with structure at two scales, like photographs (plus noise, for aliasing)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, channels, 4, 4)).astype(np.float32)
    smooth = F.interpolate(torch.from_numpy(coarse), size=(h, w), mode="bilinear", align_corners=False).numpy()
    noisy = smooth + rng.normal(0, 40, smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("size", [(28, 28), (64, 64), (37, 29), (512, 384)])
def test_clean_mode_is_clean_fids_pil_resize(size):
    """clean-fid's mode="clean": make_resizer("PIL", quantize_after=False, "bicubic", (299, 299)) on each image,
    then the TorchScript Inception's (x - 128) / 128. Up- and downsampling, non-square: the same floats."""
    images = _images(0, 3, *size)
    resize = cleanfid_resize.build_resizer("clean")
    reference = np.stack([resize(image) for image in images])  # (N, 299, 299, 3), 0..255 floats
    ours = preprocess(_nchw(images), "clean").permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, (reference - 128) / 128, rtol=0, atol=1e-6)


def test_clean_mode_of_float_images_is_that_of_their_255_scaled_values():
    """Float images in [0, 1] are scaled by 255, never rounded (clean-fid does the same with a generator's output)."""
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    resize = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    reference = np.stack([resize(image) for image in (x * 255).permute(0, 2, 3, 1).numpy()])
    ours = preprocess(x, "clean").permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, (reference - 128) / 128, rtol=0, atol=1e-5)


def test_legacy_pytorch_mode_is_clean_fids_and_pytorch_fids():
    """clean-fid's "legacy_pytorch": F.interpolate bilinear on 0..255 values, then pytorch-fid's network divides by
    255 and maps to [-1, 1]. The same computation as our 'pytorch-fid' mode, hence one cache identity."""
    images = _images(1, 3, 32, 48)
    resize = cleanfid_resize.build_resizer("legacy_pytorch")
    reference = np.stack([resize(image) for image in images]) / 255 * 2 - 1
    for mode in ("legacy-pytorch", "pytorch-fid"):
        ours = preprocess(_nchw(images), mode).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)
    assert canonical_mode("legacy-pytorch") == canonical_mode("pytorch-fid")


def _torchscript_inception_resize(x: torch.Tensor) -> torch.Tensor:
    """The resize inside NVIDIA's TorchScript port of the TF Inception graph (inception-2015-12-05.pt), which clean-fid
    runs for mode="legacy_tensorflow" (its build_resizer passes images through unresized): an identity affine grid
    shifted by 1/in - 1/299, sampled bilinearly with border padding, then (x - 128) / 128. Written out from the
    TorchScript's code because its file must be downloaded and clean-fid's own TF resizer needs TensorFlow."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float64).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] += 1 / w - 1 / 299
    theta[:, 1, 2] += 1 / h - 1 / 299
    grid = F.affine_grid(theta, [n, c, 299, 299], align_corners=False)
    x = F.grid_sample(x.double(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (x - 128) / 128


def test_legacy_tensorflow_mode_is_the_tf_graphs_resize_without_tensorflow():
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x as tf1

    images = _nchw(_images(2, 2, 28, 36))
    ours = preprocess(images, "legacy-tensorflow", dtype=torch.float64)
    # 1e-5: both sample positions i * in / 299 computed in float32 (as torch-fidelity does), not exactly.
    assert torch.allclose(ours, _torchscript_inception_resize(images.double()), atol=1e-5)
    fidelity = (tf1(images.float(), size=(299, 299), align_corners=False) - 128) / 128
    assert torch.allclose(ours.float(), fidelity, atol=1e-5)
    assert canonical_mode("legacy-tensorflow") == canonical_mode("torch-fidelity")


def test_modes_differ_where_they_should_and_grey_is_repeated():
    images = _nchw(_images(3, 2, 28, 28, channels=1))
    inputs = {mode: preprocess(images, mode) for mode in PREPROCESSING}
    assert all(x.shape == (2, 3, 299, 299) for x in inputs.values())
    assert torch.equal(inputs["clean"][:, 0], inputs["clean"][:, 2])
    # clean (bicubic) vs legacy (bilinear): visibly different inputs, which is why the mode must be stated.
    assert (inputs["clean"] - inputs["legacy-tensorflow"]).abs().max() > 0.05
    with pytest.raises(ValueError, match="clean"):
        preprocess(images, "clean_fid")


# ------------------------------------------------------------------------------ reference statistics files
def _write_images(path, seed: int, n: int = 60) -> str:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8))
    return str(path)


def _pytorch_fid_cli(a, b) -> float:
    """`python -m pytorch_fid a.npz b.npz`, pytorch-fid's own command. pytorch-fid 0.3 builds its Inception network
    before looking at the paths, even for two statistics files, and would download the weights for it; the network
    is never run on .npz inputs, so its weight loader is handed an untrained state dict instead (nothing downloads).
    Run in a subprocess, as a user runs it."""
    import subprocess
    import sys

    script = (
        "import runpy, sys\n"
        "import pytorch_fid.inception as pfi\n"
        "from course_lib.metrics.inception import FIDInceptionV3\n"
        "pfi.load_state_dict_from_url = lambda *a, **k: FIDInceptionV3().state_dict()\n"
        f"sys.argv = ['pytorch_fid', {str(a)!r}, {str(b)!r}, '--device', 'cpu', '--num-workers', '0']\n"
        "runpy.run_module('pytorch_fid', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return float(re.search(r"FID:\s+(\S+)", done.stdout).group(1))


def test_fid_stats_files_give_pytorch_fids_number_and_our_images_number(tmp_path, capsys):
    from course_lib.cli.main import main
    from course_lib.metrics import GeneratorEvaluator, fid
    from course_lib.metrics.stats_cache import Statistics

    a_images, b_images = _write_images(tmp_path / "a_images.npz", 0), _write_images(tmp_path / "b_images.npz", 1)
    for images, out in ((a_images, "a.npz"), (b_images, "b.npz")):
        assert main(["fid-stats", images, str(tmp_path / out), "--extractor", "pixels", "--no-progress"]) == 0
    assert "protocol: 8x8 average pooling" in capsys.readouterr().out
    with np.load(tmp_path / "a.npz") as f:  # pytorch-fid's layout
        assert f["mu"].dtype == f["sigma"].dtype == np.float64 and f["sigma"].shape == (192, 192)
    ours_files = fid(str(tmp_path / "a.npz"), str(tmp_path / "b.npz")).value
    ours_images = fid(a_images, b_images, extractor="pixels", use_cache=False).value
    assert ours_files == pytest.approx(ours_images, rel=1e-9)
    assert _pytorch_fid_cli(tmp_path / "a.npz", tmp_path / "b.npz") == pytest.approx(ours_files, rel=1e-6)
    # The file is a reference for the evaluator and `course-lib metrics` too.
    assert Statistics.load(tmp_path / "b.npz").n == 60
    evaluator = GeneratorEvaluator(["fid"], str(tmp_path / "b.npz"), extractor="pixels", n_samples=60)
    assert evaluator.score_images(a_images)["fid"] == pytest.approx(ours_files, rel=1e-9)
    assert "60 reference images" in evaluator.protocol
    assert main(["metrics", a_images, "--reference", str(tmp_path / "b.npz"), "--metrics", "fid"] + PIXELS) == 0
    assert f"{ours_files:.3f}" in capsys.readouterr().out
    ci = ["--ci", "0.9", "--bootstrap", "10"]
    assert main(["metrics", a_images, "--reference", str(tmp_path / "b.npz"), "--metrics", "fid"] + PIXELS + ci) == 0
    printed = capsys.readouterr().out
    assert "(90% CI, n=60)" in printed and "protocol: 8x8 average pooling" in printed and '"fid_ci": [' in printed


PIXELS = ["--extractor", "pixels", "--no-progress", "--json"]


def test_statistics_files_refuse_what_does_not_fit_in_one_line(tmp_path, capsys):
    from course_lib.cli.main import main
    from course_lib.metrics.stats_cache import Statistics

    images = _write_images(tmp_path / "images.npz", 2)
    (tmp_path / "garbled.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    np.savez(tmp_path / "five.npz", mu=np.zeros(5), sigma=np.eye(5))  # pytorch-fid style, no identity
    tf = "tf-inception-2015-12-05"
    for mode in ("clean", "pytorch-fid"):
        Statistics(np.zeros(2048), np.eye(2048), 100, f"{tf}|{mode}", "Inception-v3").save(tmp_path / f"{mode}.npz")
    cases = [
        (["fid", str(tmp_path / "missing.npz"), images], "does not exist"),
        (["fid", str(tmp_path / "garbled.npz"), images], "cannot read"),
        (["fid", str(tmp_path / "five.npz"), images, "--extractor", "mnist"], "5-d statistics with 128-d"),
        (["fid", str(tmp_path / "clean.npz"), str(tmp_path / "pytorch-fid.npz")], "clean vs .*pytorch-fid"),
        (["fid-stats", str(tmp_path / "five.npz"), str(tmp_path / "x.npz")], "already holds statistics"),
        (["fid-stats", images, str(tmp_path / "five.npz"), "--extractor", "pixels"], "exists; pass --force"),
        (["fid-stats", images, str(tmp_path / "x.txt"), "--extractor", "pixels"], "must be an .npz"),
    ]
    for argv, message in cases:
        assert main(argv + ["--no-progress"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), (argv, err)
    assert not (tmp_path / "x.npz").exists()


def test_fid_stats_records_the_mode_and_same_computations_match(tmp_path):
    """Statistics written in one mode carry it: a legacy-pytorch file is a pytorch-fid file (the same computation),
    a clean one is not. Random Inception weights on 3 tiny images: only the bookkeeping is under test here."""
    from course_lib.metrics import fid
    from course_lib.metrics.features import InceptionExtractor
    from course_lib.metrics.inception import random_inception_weights
    from course_lib.metrics.inputs import as_image_source
    from course_lib.metrics.stats_cache import Statistics, cached_statistics

    weights = random_inception_weights(seed=0)
    images = torch.from_numpy(_images(4, 3, 12, 12)).permute(0, 3, 1, 2).contiguous()
    files = {}
    for mode in ("legacy-pytorch", "clean"):
        extractor = InceptionExtractor(weights, device="cpu", preprocessing=mode)
        stats = cached_statistics(as_image_source(images), extractor, progress=False, use_cache=False)
        files[mode] = stats.save(tmp_path / f"{mode}.npz")
        assert Statistics.load(files[mode]).protocol.startswith(DESCRIPTIONS[mode] + "; Inception-v3")
    legacy = Statistics.load(files["legacy-pytorch"])
    # What pytorch-fid mode writes for the same features: its identity.
    same = Statistics(legacy.mu, legacy.sigma, legacy.n, f"{weights.identity}|pytorch-fid", "Inception-v3")
    assert legacy.extractor_identity == same.extractor_identity
    # 0 up to the rounding of a square root of a rank-2 covariance in 2,048 dimensions.
    assert fid(str(files["legacy-pytorch"]), same).value == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(MetricInputError, match="different feature extractors or preprocessing"):
        fid(str(files["clean"]), same)
