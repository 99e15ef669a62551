"""FID in the literature's conventions: clean-fid's resizing modes against clean-fid's own resize functions, and
reference statistics in pytorch-fid's `.npz` layout against `python -m pytorch_fid`.

Nothing here needs the real Inception weights: the resize tests compare network inputs, and the FID tests use
random Inception weights (`random_inception_weights`) or cheap extractors; no test downloads anything.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.metrics.inception import PREPROCESSING, preprocess
from course_lib.metrics.resize import canonical_mode

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
