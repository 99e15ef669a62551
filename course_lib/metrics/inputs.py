"""The input contract of every metric: where images come from, and what they must look like.

Accepted images (all turned into an `ImageSource`, which yields batches and never holds more than
the input itself already does):
- a torch tensor or numpy array: uint8 in [0, 255], or floating point with an explicit
  `value_range` of (0, 1) or (-1, 1). Shapes (N, H, W) (grey), (N, C, H, W), or for numpy arrays
  also (N, H, W, C), with C = 1 or 3;
- a folder of image files (decoded batch by batch, in sorted order, converted to RGB);
- an `.npz` file holding a uint8 array `images` of shape (N, H, W) or (N, H, W, C) (or a `.npy` array);
- a dataset name known to `course_lib.data.load_dataset` ("mnist", "mnist:test", "celeba", ...);
- a generator (an nn.Module with `latent_dim`, mapping z ~ N(0, I) to images in [-1, 1]) with a
  sample count: images are produced batch by batch from a seeded noise stream.

Batches leave a source as uint8 (N, C, H, W) tensors, or float tensors scaled to [0, 1]; each
feature extractor does its own resizing and scaling from there. Values outside the declared range,
NaN/inf, empty inputs and impossible shapes raise MetricInputError with what to do.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import MetricInputError

VALUE_RANGES = {(0.0, 1.0), (-1.0, 1.0)}
# Floats may overshoot their declared range by this much (rounding in a tanh or a resize) without an error.
RANGE_TOLERANCE = 1e-4


def parse_value_range(value_range: Any) -> tuple[float, float] | None:
    """(0, 1), (-1, 1), "0,1", "-1,1" or None -> a tuple (or None); anything else is an error."""
    if value_range is None:
        return None
    if isinstance(value_range, str):
        try:
            value_range = tuple(float(v) for v in value_range.replace(" ", "").split(","))
        except ValueError:
            value_range = (value_range,)
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise MetricInputError(f"value_range must be (0, 1) or (-1, 1), got {value_range!r}") from None
    if (lo, hi) not in VALUE_RANGES:
        raise MetricInputError(
            f"value_range must be (0, 1) or (-1, 1), got ({lo:g}, {hi:g}); rescale your images to one of them"
        )
    return lo, hi


def _as_nchw(array: torch.Tensor, was_numpy: bool, what: str) -> torch.Tensor:
    if array.ndim == 3:
        return array.unsqueeze(1)
    if array.ndim != 4:
        raise MetricInputError(
            f"{what}: expected images of shape (N, H, W), (N, C, H, W) or (N, H, W, C), got {tuple(array.shape)}"
        )
    channels_first, channels_last = array.shape[1] in (1, 3), array.shape[-1] in (1, 3)
    # numpy images (PIL, imageio) are usually channels-last, torch images channels-first.
    if channels_last and (was_numpy or not channels_first):
        return array.permute(0, 3, 1, 2)
    if channels_first:
        return array
    raise MetricInputError(
        f"{what}: shape {tuple(array.shape)} has neither 1 nor 3 channels (first or last axis); "
        "drop the alpha channel or convert to RGB/grey first"
    )


def check_float_batch(x: torch.Tensor, value_range: tuple[float, float], what: str) -> torch.Tensor:
    """Validate a float batch against its declared range and return it scaled to [0, 1]."""
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise MetricInputError(f"{what}: {bad} values are NaN or infinite; check the model or data that produced them")
    lo, hi = value_range
    xmin, xmax = x.min().item(), x.max().item()
    if xmin < lo - RANGE_TOLERANCE or xmax > hi + RANGE_TOLERANCE:
        hint = " (they look like 0..255 values: pass uint8 images instead)" if xmax > 1.5 else ""
        raise MetricInputError(
            f"{what}: values span [{xmin:.4g}, {xmax:.4g}], outside the declared value_range "
            f"({lo:g}, {hi:g}){hint}; declare the range they are really in"
        )
    x = x.float()
    if lo == -1.0:
        x = (x + 1) / 2
    return x.clamp(0, 1)


class ImageSource:
    """Images from somewhere, in batches. Subclasses set `count`, `description`, and `identity`
    (a string naming the images exactly, for the statistics cache; None when they cannot be named)."""

    count: int = 0
    description: str = "images"
    identity: str | None = None
    labels: torch.Tensor | None = None

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description}, {self.count} images)"


class TensorSource(ImageSource):
    """An in-memory tensor or array of images (validated once, up front)."""

    def __init__(self, images: torch.Tensor | np.ndarray, value_range=None, labels=None, what: str = "images"):
        was_numpy = isinstance(images, np.ndarray)
        if was_numpy:
            if images.dtype == object or not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
                raise MetricInputError(f"{what}: numpy array of dtype {images.dtype} is not an image array")
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not isinstance(images, torch.Tensor):
            raise MetricInputError(
                f"{what}: expected a tensor, array, folder, .npz file, dataset name or generator, "
                f"got {type(images).__name__}"
            )
        images = _as_nchw(images.detach(), was_numpy, what)
        if images.shape[0] == 0 or images.numel() == 0:
            raise MetricInputError(f"{what}: no images (shape {tuple(images.shape)})")
        value_range = parse_value_range(value_range)
        if images.dtype == torch.uint8:  # unambiguous: 0..255, whatever float range was declared
            self.images = images
        elif images.is_floating_point():
            if value_range is None:
                raise MetricInputError(
                    f"{what}: float images need an explicit value_range, (0, 1) or (-1, 1) (a tanh generator's "
                    "output is (-1, 1)); or pass uint8 images in 0..255"
                )
            self.images = check_float_batch(images, value_range, what)
        else:
            raise MetricInputError(
                f"{what}: dtype {images.dtype} is not supported; use uint8 (0..255) or float with value_range"
            )
        self.count = len(self.images)
        self.description = f"{what}: {self.count} tensor images {tuple(self.images.shape[1:])}"
        self.labels = None if labels is None else torch.as_tensor(labels).long()
        if self.labels is not None and len(self.labels) != self.count:
            raise MetricInputError(f"{what}: {len(self.labels)} labels for {self.count} images")

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        yield from self.images.split(batch_size)


def _decode(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MetricInputError(
            f"cannot decode image {path}: {exc} (truncated or corrupt; remove or replace it)"
        ) from exc


class FolderSource(ImageSource):
    """Every image file below a folder, in sorted order, decoded batch by batch as RGB (like pytorch-fid)."""

    def __init__(self, folder: str | os.PathLike, limit: int | None = None):
        from course_lib.data import IMAGE_SUFFIXES, list_images

        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise MetricInputError(f"image folder {self.folder} does not exist")
        self.files = list_images(self.folder)
        if limit is not None:
            self.files = self.files[:limit]
        if not self.files:
            raise MetricInputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found below {self.folder}")
        self.count = len(self.files)
        self.description = f"{self.count} images from {self.folder}"
        digest = hashlib.sha1()
        for f in self.files:
            st = f.stat()
            digest.update(f"{f.relative_to(self.folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        self.identity = f"folder:{self.folder.resolve()}:{digest.hexdigest()[:16]}"

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        first_shape = None
        for start in range(0, self.count, batch_size):
            arrays = []
            for f in self.files[start : start + batch_size]:
                a = _decode(f)
                if first_shape is None:
                    first_shape = (a.shape, f)
                elif a.shape != first_shape[0]:
                    raise MetricInputError(
                        f"images in {self.folder} differ in size: {first_shape[1].name} is {first_shape[0][1]}x"
                        f"{first_shape[0][0]}, {f.name} is {a.shape[1]}x{a.shape[0]}; resize them to one size first"
                    )
                arrays.append(a)
            yield torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def load_array_file(path: str | os.PathLike) -> np.ndarray:
    """The uint8 `images` array of an .npz file (or the array of an .npy file), checked."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MetricInputError(f"{path} does not exist")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                if "images" not in archive.files:
                    keys = ", ".join(archive.files) or "none"
                    hint = (
                        " (it holds FID statistics mu/sigma, not images)"
                        if {"mu", "sigma"} <= set(archive.files)
                        else ""
                    )
                    raise MetricInputError(f"{path} has no 'images' array (keys: {keys}){hint}")
                array = archive["images"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a truncated or garbled file
        raise MetricInputError(f"cannot read {path}: {exc}") from exc
    if array.dtype != np.uint8:
        raise MetricInputError(
            f"{path}: 'images' must be uint8 (0..255), got {array.dtype}; convert with "
            "np.clip(np.round(x * 255), 0, 255).astype(np.uint8) for [0, 1] floats"
        )
    return array


class ArrayFileSource(TensorSource):
    """The images of an .npz (`images` key) or .npy file."""

    def __init__(self, path: str | os.PathLike, limit: int | None = None):
        path = Path(path).expanduser()
        array = load_array_file(path)
        if limit is not None:
            array = array[:limit]
        super().__init__(array, what=str(path))
        st = path.stat()
        self.identity = f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{limit}"
        self.description = f"{self.count} images from {path}"


class DatasetSource(TensorSource):
    """A dataset known to course_lib.data, by name: 'mnist', 'mnist:test', 'celeba', 'fashion-mnist:test', ..."""

    def __init__(
        self, spec: str, root=None, image_size: int | None = None, limit: int | None = None, progress: bool = True
    ):
        from course_lib.data import PREPROCESS_VERSION, load_dataset

        name, _, split = spec.partition(":")
        split = split or "train"
        data = load_dataset(name, root=root, split=split, image_size=image_size, limit=limit, progress=progress)
        super().__init__(data.images, labels=data.labels, what=f"dataset {spec}")
        self.description = data.source
        root_id = "embedded" if (name == "mnist" and root is None) else str(Path(root).resolve()) if root else "default"
        self.identity = (
            f"dataset:{name}:{split}:{root_id}:size={image_size}:limit={limit}:"
            f"v{PREPROCESS_VERSION}:{self.count}:{tuple(self.images.shape[1:])}"
        )


def noise_batches(count: int, latent_dim: int, seed: int, batch_size: int) -> Iterator[torch.Tensor]:
    """`count` latents z ~ N(0, I) on the CPU, `batch_size` at a time, from a private generator seeded with
    `seed`: the noise of every generator evaluation (the global RNG is never used). The batches are drawn
    one after another, so the latents depend on `batch_size` as well as on `seed`."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    for start in range(0, count, batch_size):
        yield torch.randn(min(batch_size, count - start), latent_dim, generator=rng)


class GeneratorSource(ImageSource):
    """`count` images from a generator, made `batch_size` at a time from seeded N(0, I) noise.

    The generator is put in eval mode while sampling (then restored), and runs on its own device.
    Its outputs must lie in [-1, 1] (tanh), or in `value_range` if given.
    """

    def __init__(self, generator: nn.Module, count: int, seed: int = 0, value_range=(-1, 1)):
        if not hasattr(generator, "latent_dim"):
            raise MetricInputError(
                "a generator must be an nn.Module with a `latent_dim` attribute (course_lib.nn.models)"
            )
        if count is None or int(count) < 1:
            raise MetricInputError(f"a generator needs a positive sample count (n_samples=...), got {count}")
        self.generator, self.count, self.seed = generator, int(count), seed
        self.value_range = parse_value_range(value_range)
        self.description = f"{self.count} samples from {type(generator).__name__} (seed {seed})"

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        try:
            device = next(self.generator.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        was_training = self.generator.training
        self.generator.eval()
        try:
            with torch.no_grad():
                for z in noise_batches(self.count, self.generator.latent_dim, self.seed, batch_size):
                    images = self.generator(z.to(device))
                    if images.ndim != 4 or images.shape[1] not in (1, 3):
                        raise MetricInputError(
                            f"the generator returned shape {tuple(images.shape)}, expected (N, 1 or 3, H, W)"
                        )
                    yield check_float_batch(images, self.value_range, "generator output")
        finally:
            self.generator.train(was_training)


def as_image_source(
    images: Any,
    value_range=None,
    n_samples: int | None = None,
    labels=None,
    seed: int = 0,
    data_root=None,
    image_size: int | None = None,
    limit: int | None = None,
    what: str = "images",
    progress: bool = True,
) -> ImageSource:
    """Turn any accepted input (see the module docstring) into an ImageSource."""
    if isinstance(images, ImageSource):
        return images
    if isinstance(images, nn.Module):
        return GeneratorSource(images, n_samples, seed=seed, value_range=value_range or (-1, 1))
    if isinstance(images, (str, os.PathLike)):
        path = Path(images).expanduser()
        if path.is_dir():
            return FolderSource(path, limit=limit)
        if path.suffix in (".npz", ".npy"):
            return ArrayFileSource(path, limit=limit)
        if path.exists():
            raise MetricInputError(f"{path}: expected a folder of images, an .npz/.npy file, or a dataset name")
        from course_lib.data import DATASETS

        if str(images).partition(":")[0] in DATASETS:
            return DatasetSource(str(images), root=data_root, image_size=image_size, limit=limit, progress=progress)
        raise MetricInputError(
            f"{images!r} is neither an existing folder or .npz file nor a dataset name "
            f"({', '.join(DATASETS)}, optionally with ':test')"
        )
    source = TensorSource(images, value_range=value_range, labels=labels, what=what)
    if limit is not None:
        source.images = source.images[:limit]
        source.count = len(source.images)
        if source.labels is not None:
            source.labels = source.labels[:limit]
    return source
