"""How images become the Inception network's 299x299 input: the resizing and scaling conventions ("modes") of
the reference implementations, so an FID can be computed the way a given paper computed it.

An FID depends on these steps more than one would hope (Parmar et al. 2022, "On Aliased Resizing and
Surprising Subtleties in GAN Evaluation", the clean-fid paper): upsampling 28x28 digits or 64x64 faces to
299x299 with one filter or another moves FID by whole points. The modes:

    mode               resize to 299x299                                   then      same as
    clean              PIL bicubic, antialiased, on float32 per channel    x/128-1   clean-fid mode="clean"
    legacy-pytorch     torch bilinear (F.interpolate, no antialiasing)     2x/255-1  clean-fid "legacy_pytorch"
    pytorch-fid        (the same computation: pytorch-fid's own)           2x/255-1  pytorch-fid
    legacy-tensorflow  TensorFlow 1.x resize_bilinear(align_corners=False) x/128-1   clean-fid "legacy_tensorflow"
    torch-fidelity     (the same computation: torch-fidelity's own)        x/128-1   torch-fidelity
    torchmetrics       torch bilinear, antialiased                         x/128-1   torchmetrics

(x in 0..255; "x/128-1" is (x - 128) / 128.) Values are never quantised to uint8 after the resize, as in
clean-fid's three modes; uint8 images are used as they are and float images in [0, 1] are scaled by 255
without rounding (clean-fid does the same with a generator's float output). Grey images are repeated into
three channels first, like the RGB conversion of every reference implementation.

legacy-tensorflow needs no TensorFlow: clean-fid runs it through NVIDIA's TorchScript port of the TF graph,
whose built-in resize (an affine grid sampled bilinearly with border padding, shifted so output pixel i reads
input position i * in / out) is TF 1.x's resize exactly; `resize_bilinear_tf1` computes the same. Modes that
are the same computation (legacy-pytorch and pytorch-fid; legacy-tensorflow and torch-fidelity) share one
cache identity (`canonical_mode`), so their statistics are interchangeable; every other pair is refused as
a mismatch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

INPUT_SIZE = 299
MODES = ("pytorch-fid", "torch-fidelity", "torchmetrics", "clean", "legacy-pytorch", "legacy-tensorflow")
# Mode names that are another mode's computation under clean-fid's name.
SAME_AS = {"legacy-pytorch": "pytorch-fid", "legacy-tensorflow": "torch-fidelity"}
DESCRIPTIONS = {
    "pytorch-fid": "pytorch-fid resizing (torch bilinear, no antialiasing)",
    "legacy-pytorch": "clean-fid legacy-pytorch resizing (torch bilinear, no antialiasing)",
    "torch-fidelity": "torch-fidelity resizing (TensorFlow 1.x bilinear)",
    "legacy-tensorflow": "clean-fid legacy-tensorflow resizing (TensorFlow 1.x bilinear)",
    "torchmetrics": "torchmetrics resizing (torch bilinear, antialiased)",
    "clean": "clean-fid clean resizing (PIL bicubic, antialiased, float)",
}


def check_mode(mode: str) -> str:
    """`mode` if it is one of MODES; else ValueError naming them."""
    if mode not in MODES:
        raise ValueError(f"unknown Inception preprocessing {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def canonical_mode(mode: str) -> str:
    """The name of the computation a mode performs (legacy-pytorch -> pytorch-fid, ...), for cache identities."""
    return SAME_AS.get(check_mode(mode), mode)


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1.x's `resize_bilinear(align_corners=False)` does it (torch-fidelity's convention).

    Output pixel i samples input position i * (in / out), no half-pixel offset, and the last input
    pixel is repeated past the edge; the two axes are interpolated one after the other.
    """

    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        n_in = t.shape[dim]
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        pos = torch.arange(size, dtype=torch.float32, device=t.device) * scale.to(t.device)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        frac = (pos - lo.float()).to(t.dtype)
        shape = [1] * t.ndim
        shape[dim] = size
        a, b = t.index_select(dim, lo), t.index_select(dim, hi)
        return a + (b - a) * frac.view(shape)

    return along(along(x, 2), 3)


def resize_pil_bicubic(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """clean-fid's "clean" resize: each channel of each image as a float32 PIL image ('F' mode), PIL bicubic
    (antialiased when shrinking), clipped to [0, 255]. x: (N, C, H, W) values in 0..255 on any device;
    returns float32 (N, C, size, size) on x's device. PIL runs on the CPU, one channel at a time, as in clean-fid
    (torch's antialiased bicubic comes within ~0.006 of it, not exactly: PIL is the reference, so PIL it is)."""
    planes = x.detach().to("cpu", torch.float32).numpy()
    out = np.empty((*planes.shape[:2], size, size), dtype=np.float32)
    for i, image in enumerate(planes):
        for c, plane in enumerate(image):
            resized = Image.fromarray(plane, mode="F").resize((size, size), resample=Image.BICUBIC)
            out[i, c] = np.asarray(resized)
    return torch.from_numpy(out.clip(0, 255)).to(x.device)


def to_network_input(x: torch.Tensor, mode: str = "pytorch-fid", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A batch (uint8 0..255, or float in [0, 1]; 1 or 3 channels) -> the Inception network's 299x299 input in
    `mode` (see the module docstring). `dtype`: float32, or float64 for exact comparisons."""
    mode = canonical_mode(mode)
    grey = x.shape[1] == 1
    resize_needed = tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE)
    if mode == "pytorch-fid":
        x = x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)
        if resize_needed:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
    else:
        x = x.to(dtype) if x.dtype == torch.uint8 else x.to(dtype) * 255.0
        if resize_needed:
            if mode == "torch-fidelity":
                x = resize_bilinear_tf1(x, INPUT_SIZE)
            elif mode == "clean":
                x = resize_pil_bicubic(x).to(dtype)
            else:
                x = F.interpolate(
                    x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True
                )
        x = (x - 128) / 128
    # Every mode resizes channels independently, so a grey image is resized once and repeated.
    return x.expand(-1, 3, -1, -1) if grey else x
