"""Datasets as uint8 image tensors (the loader that turns them into batches is `course_lib.data.loader`).

Every dataset is decoded once into an `ImageData`: a uint8 tensor of shape (N, C, H, W) plus
optional integer labels. Training batches are scaled to [-1, 1] only when they are drawn, so an
epoch never re-decodes a JPEG and the whole set stays compact (CelebA 64x64: 12 KB an image).

Where the data comes from:
- ``mnist``: a real MNIST subset embedded in the package (10k train + 2k test), no network needed;
  with an explicit ``root`` it means the full MNIST instead, read by torchvision.
- ``mnist-full`` / ``fashion-mnist``: torchvision's MNIST / FashionMNIST under the data root.
- ``celeba``: torchvision's CelebA layout, or any folder of images (the DCGAN tutorial's
  ``ImageFolder`` layout), cropped and resized the standard way and cached on disk.
- ``folder``: any folder of images given as ``root``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.core.errors import DataError
from course_lib.core.images import check_uint8_images
from course_lib.core.io import save_npy_atomic
from course_lib.core.runtime import ASSETS_DIR, cache_dir, data_root

EMBEDDED_MNIST = ASSETS_DIR / "mnist_subset.npz"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
DATASETS = ("mnist", "mnist-full", "fashion-mnist", "celeba", "folder")
# Bump when the CelebA/folder preprocessing changes, so stale caches are not reused.
PREPROCESS_VERSION = 1


@dataclass
class ImageData:
    """A decoded image dataset: uint8 images (N, C, H, W) in [0, 255] and optional labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str
    source: str

    def __post_init__(self):
        check_uint8_images(self.images, what=f"dataset {self.name!r}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DataError(f"dataset {self.name!r}: {len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def subset(self, n: int) -> ImageData:
        """The first n images (datasets are stored in their canonical order)."""
        labels = None if self.labels is None else self.labels[:n]
        return ImageData(self.images[:n], labels, self.name, f"{self.source}, first {min(n, len(self))}")


# ----------------------------------------------------------------------------------------- MNIST
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an (uncompressed or .gz) IDX file such as MNIST's, checking its header and length."""
    import gzip

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(
            f"cannot read {path}: {exc} (the file is truncated or corrupt; delete it and download again)"
        ) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX uint8 file (bad magic number); delete it and download again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header incomplete); delete it and download again")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path} is truncated or corrupt: {len(raw)} bytes, expected {expected} for shape {shape}; "
            "delete it and download again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_embedded_mnist(split: str = "train") -> ImageData:
    """The MNIST subset shipped in the package: 10,000 train and 2,000 test digits (see assets/README.md)."""
    if split not in ("train", "test"):
        raise DataError(f"MNIST split must be 'train' or 'test', got {split!r}")
    if not EMBEDDED_MNIST.is_file():
        raise DataError(
            f"the embedded MNIST subset is missing from the installation ({EMBEDDED_MNIST}); reinstall course_lib"
        )
    with np.load(EMBEDDED_MNIST) as arrays:
        images = torch.from_numpy(arrays[f"{split}_images"].copy()).unsqueeze(1)
        labels = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
    return ImageData(images, labels, "mnist", f"embedded MNIST subset ({len(images):,} {split} images)")


_TORCHVISION_MNIST = {
    "mnist-full": ("MNIST", "MNIST", "http://yann.lecun.com/exdb/mnist/ (mirrored by torchvision)"),
    "fashion-mnist": (
        "FashionMNIST",
        "FashionMNIST",
        "https://github.com/zalandoresearch/fashion-mnist "
        "(offline on Debian: apt-get install dataset-fashion-mnist, then copy its files into the folder)",
    ),
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_torchvision_mnist(name: str, root=None, split: str = "train", download: bool = False) -> ImageData:
    """Full MNIST or Fashion-MNIST through torchvision, from `root/<MNIST|FashionMNIST>/raw`."""
    import torchvision

    cls_name, folder, origin = _TORCHVISION_MNIST[name]
    root = data_root(root)
    raw = root / folder / "raw"
    if split not in _IDX_FILES:
        raise DataError(f"{name} split must be 'train' or 'test', got {split!r}")
    files = [raw / f for f in _IDX_FILES[split]]
    # Validate what is on disk first, so a truncated file is named instead of failing deep in torchvision.
    for f in files:
        for candidate in (f, f.with_name(f.name + ".gz")):
            if candidate.exists():
                read_idx(candidate)
                break
    try:
        ds = getattr(torchvision.datasets, cls_name)(str(root), train=(split == "train"), download=download)
    except RuntimeError as exc:
        hint = "" if download else " or pass download=True (--download) on a machine with internet access"
        raise DataError(
            f"{name} not found: looked for {', '.join(str(f) for f in files)}. Put the four IDX files from "
            f"{origin} in {raw}{hint}; set the data root with --data-root or ${'COURSE_LIB_DATA'}. ({exc})"
        ) from exc
    except OSError as exc:  # network failure while downloading
        raise DataError(
            f"downloading {name} into {raw} failed ({exc}); you may be offline: copy the IDX files there by hand"
        ) from exc
    images = ds.data.to(torch.uint8).unsqueeze(1).contiguous()
    return ImageData(images, ds.targets.long(), name, f"{name} from {raw} ({len(images):,} {split} images)")


# ------------------------------------------------------------------------------- CelebA / folders
def preprocess_image(path: str | os.PathLike, image_size: int = 64, crop: int | None = 178) -> np.ndarray:
    """Decode one image and return the standard (H, W, 3) uint8 crop.

    For CelebA's aligned 178x218 images the standard preprocessing takes the central 178x178 square
    (rows 20..197) and resizes it to `image_size` (PIL bilinear, antialiased when shrinking). With
    crop=None the central square of side min(width, height) is used, for folders of other images.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image {path}: {exc} (truncated or corrupt; remove or replace it)") from exc
    width, height = img.size
    side = min(width, height) if crop is None else crop
    if side > min(width, height):
        raise DataError(f"image {path} is {width}x{height}, smaller than the {side}x{side} crop")
    # Same rounding as torchvision.transforms.CenterCrop.
    left, top = int(round((width - side) / 2.0)), int(round((height - side) / 2.0))
    img = img.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All image files below `folder`, sorted by path (so the order is the same on every machine)."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _cache_key(files: list[Path], base: Path, image_size: int, crop) -> str:
    digest = hashlib.sha1(f"v{PREPROCESS_VERSION}|{image_size}|{crop}".encode())
    for f in files:
        digest.update(f"{f.relative_to(base)}|{f.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def decode_images(
    files: list[Path], image_size: int, crop, workers: int | None = None, progress: bool = True
) -> np.ndarray:
    """Decode and preprocess many images (in parallel worker processes) into one (N, H, W, 3) uint8 array."""
    from tqdm.auto import tqdm

    out = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    work = partial(preprocess_image, image_size=image_size, crop=crop)
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(files), desc=f"decoding {len(files):,} images", unit="img", disable=not progress)
    if workers <= 1 or len(files) < 256:
        for i, f in enumerate(files):
            out[i] = work(f)
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn" if os.name == "nt" else "fork").Pool(workers) as pool:
            for i, arr in enumerate(pool.imap(work, files, chunksize=64)):
                out[i] = arr
                bar.update()
    bar.close()
    return out


def load_image_folder(
    folder,
    image_size: int = 64,
    crop: int | None = None,
    name: str = "folder",
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> ImageData:
    """Every image below `folder`, centre-cropped and resized, decoded once and cached as uint8."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{name}: image folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise DataError(f"{name}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found below {folder}")
    if limit is not None:
        files = files[:limit]
    key = _cache_key(files, folder, image_size, crop)
    cached = cache_dir() / "images" / f"{name}-{image_size}px-{len(files)}-{key}.npy"
    array = None
    if use_cache and cached.is_file():
        try:
            array = np.load(cached)
        except (OSError, ValueError):
            array = None  # a damaged cache is rebuilt, never trusted
        if array is not None and array.shape != (len(files), image_size, image_size, 3):
            array = None
    if array is None:
        array = decode_images(files, image_size, crop, workers=workers, progress=progress)
        if use_cache:
            save_npy_atomic(array, cached)
    images = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    return ImageData(images, None, name, f"{len(files):,} images from {folder} ({image_size}x{image_size})")


CELEBA_HELP = (
    "Get CelebA one of two ways: (1) torchvision.datasets.CelebA(root, download=True) on a machine with "
    "internet access; Google Drive often refuses with 'Too many users have viewed or downloaded this file "
    "recently' (a daily quota) - then (2) download img_align_celeba.zip yourself from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (or its Kaggle mirror) and unzip it so the JPEGs are "
    "in <root>/celeba/img_align_celeba/, the PyTorch DCGAN tutorial's ImageFolder layout (or name the zip in "
    "$COURSE_LIB_CELEBA_ZIP: course_lib.data.prepare_celeba unpacks it there; on Colab, from a mounted Drive). "
    "Pass the root with --data-root or $COURSE_LIB_DATA."
)


CELEBA_ZIP_ENV = "COURSE_LIB_CELEBA_ZIP"  # a local img_align_celeba.zip (a mounted Drive, an upload, a Kaggle input)
CELEBA_DOWNLOAD_ENV = "COURSE_LIB_CELEBA_DOWNLOAD"  # "1": fetch CelebA with torchvision (Google Drive)
CELEBA_ZIP_FOLDER = "img_align_celeba"  # the one top-level folder of the official img_align_celeba.zip


def prepare_celeba(root=None, archive=None, download: bool | None = None) -> Path:
    """Make `root/celeba/img_align_celeba/` hold CelebA's aligned faces; returns that folder.

    The two documented ways, tried in this order when the folder is not there yet: (1) unpack a local copy of the
    official `img_align_celeba.zip` (`archive`, else `$COURSE_LIB_CELEBA_ZIP`, else one already in `root/celeba/`):
    on Colab a file on a mounted Google Drive, on Kaggle a dataset input; (2) with `download` (default:
    `$COURSE_LIB_CELEBA_DOWNLOAD` set to 1), torchvision's `CelebA(root, download=True)`, which fetches it from
    Google Drive (often refused for a day: "too many users"). The archive is unpacked into a temporary folder and
    moved into place only when complete, so an interrupted unpacking leaves nothing half-done; members outside its
    `img_align_celeba/` folder are refused. A one-line error (with `CELEBA_HELP`) when neither way is available.
    """
    root = data_root(root)
    folder = root / "celeba" / CELEBA_ZIP_FOLDER
    if folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        return folder
    if archive is None and os.environ.get(CELEBA_ZIP_ENV):
        archive = os.environ[CELEBA_ZIP_ENV]
    if archive is None and (root / "celeba" / f"{CELEBA_ZIP_FOLDER}.zip").is_file():
        archive = root / "celeba" / f"{CELEBA_ZIP_FOLDER}.zip"
    if archive is not None:
        _unpack_celeba(Path(archive).expanduser(), folder)
        return folder
    if download is None:
        download = os.environ.get(CELEBA_DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    if download:
        import torchvision  # heavy; only this way needs it

        try:
            torchvision.datasets.CelebA(str(root), split="all", target_type=[], download=True)
        except Exception as exc:  # noqa: BLE001 - gdown/quota/network errors come in many types
            raise DataError(f"downloading CelebA into {root / 'celeba'} failed: {exc}. {CELEBA_HELP}") from exc
        if folder.is_dir():
            return folder
    raise DataError(f"CelebA not found: looked for JPEGs in {folder}. {CELEBA_HELP}")


def _unpack_celeba(archive: Path, folder: Path) -> None:
    import shutil
    import tempfile
    import zipfile

    if not archive.is_file():
        raise DataError(f"{archive}: no such CelebA archive (${CELEBA_ZIP_ENV} or archive= names it). {CELEBA_HELP}")
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            for member in members:
                parts = Path(member.filename).parts
                if member.filename.startswith("/") or ".." in parts or parts[0] != CELEBA_ZIP_FOLDER:
                    raise DataError(
                        f"{archive}: {member.filename!r} is not inside {CELEBA_ZIP_FOLDER}/ (is this CelebA's "
                        f"{CELEBA_ZIP_FOLDER}.zip?)"
                    )
            images = [m for m in members if Path(m.filename).suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise DataError(f"{archive}: no images inside {CELEBA_ZIP_FOLDER}/. {CELEBA_HELP}")
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder.parent))
            try:
                for member in images:
                    target = staging / Path(member.filename).name
                    with zipped.open(member) as source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out)
                if folder.exists():  # an empty or image-less folder from an earlier attempt
                    shutil.rmtree(folder)
                staging.rename(folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a readable zip archive ({exc}); download it again") from exc


def load_celeba(
    root=None,
    image_size: int = 64,
    split: str = "all",
    download: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ImageData:
    """CelebA aligned faces with the standard 178x178 centre crop, resized to `image_size`.

    Looks in `root/celeba/img_align_celeba` (torchvision's and the DCGAN tutorial's layout). With
    torchvision's partition file present, split 'train'/'valid'/'test' selects that official split.
    """
    root = data_root(root)
    folder = root / "celeba" / "img_align_celeba"
    if download and not folder.is_dir():
        prepare_celeba(root, download=True)
    if not folder.is_dir():
        raise DataError(f"CelebA not found: looked for JPEGs in {folder}. {CELEBA_HELP}")
    data = load_image_folder(
        folder,
        image_size=image_size,
        crop=178,
        name="celeba",
        limit=None if split != "all" else limit,
        workers=workers,
        progress=progress,
    )
    if split != "all":
        data = _celeba_split(data, root, folder, split, limit)
    return data


def _celeba_split(data: ImageData, root: Path, folder: Path, split: str, limit) -> ImageData:
    codes = {"train": "0", "valid": "1", "test": "2"}
    if split not in codes:
        raise DataError(f"CelebA split must be all, train, valid or test, got {split!r}")
    partition = root / "celeba" / "list_eval_partition.txt"
    if not partition.is_file():
        raise DataError(
            f"CelebA split {split!r} needs {partition} (from the official release); use split='all' without it"
        )
    wanted = {line.split()[0] for line in partition.read_text().splitlines() if line.split()[1:2] == [codes[split]]}
    names = [f.name for f in list_images(folder)]
    index = torch.tensor([i for i, n in enumerate(names) if n in wanted], dtype=torch.long)
    if limit is not None:
        index = index[:limit]
    return ImageData(data.images[index], None, "celeba", f"CelebA {split} split ({len(index):,} images)")


# ------------------------------------------------------------------------------------ entry point
def load_dataset(
    name: str = "mnist",
    root=None,
    split: str = "train",
    image_size: int | None = None,
    download: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> ImageData:
    """Load a dataset by name (see the module docstring), optionally resized and cut to `limit` images."""
    if name == "mnist" and root is None:
        data = load_embedded_mnist(split)
    elif name in ("mnist", "mnist-full", "fashion-mnist"):
        data = load_torchvision_mnist("mnist-full" if name == "mnist" else name, root, split, download)
    elif name == "celeba":
        return load_celeba(
            root,
            image_size or 64,
            split="all" if split == "train" else split,
            download=download,
            limit=limit,
            progress=progress,
        )
    elif name == "folder":
        if root is None:
            raise DataError("dataset 'folder' needs the image folder as its root (--data-root PATH)")
        return load_image_folder(root, image_size or 64, crop=None, limit=limit, progress=progress)
    else:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if limit is not None:
        data = data.subset(limit)
    if image_size is not None and image_size != data.image_size:
        data = resize(data, image_size)
    return data


def resize(data: ImageData, image_size: int) -> ImageData:
    """Resize every image (bilinear, antialiased), e.g. MNIST 28x28 -> 32x32 for a DCGAN-32."""
    out = []
    for chunk in data.images.split(4096):
        x = F.interpolate(
            chunk.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return ImageData(torch.cat(out), data.labels, data.name, f"{data.source}, resized to {image_size}x{image_size}")
