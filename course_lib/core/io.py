"""Atomic file writes: the one place course_lib writes a file.

Every writer goes to a temporary file in the target's folder, flushes and fsyncs it, then renames it
over the target (`os.replace` is atomic on POSIX and Windows). A crash or a full disk mid-write
leaves the previous file intact, so readers (a resumed run, a notebook, a grader) see the old file
or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call write(f) on a temporary binary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save, atomically (checkpoints, shipped generators)."""
    import torch

    return write_atomic(path, lambda f: torch.save(obj, f))


def save_npy_atomic(array, path: str | os.PathLike) -> Path:
    """np.save of one array, atomically (decoded-image caches)."""
    import numpy as np

    return write_atomic(path, lambda f: np.save(f, array))


def save_npz_atomic(path: str | os.PathLike, compressed: bool = True, **arrays) -> Path:
    """np.savez(_compressed) of named arrays, atomically (feature and statistics caches)."""
    import numpy as np

    saver = np.savez_compressed if compressed else np.savez
    return write_atomic(path, lambda f: saver(f, **arrays))


def save_figure_atomic(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """matplotlib's savefig, atomically; the format comes from the target's suffix."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return write_atomic(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))
