"""What this machine offers the course (notebook 00 prints it): versions, devices, fast mode, data found."""

from __future__ import annotations

import os

import torch

from course_lib.core.runtime import data_root, fast_mode, pick_device
from course_lib.data import EMBEDDED_MNIST


def environment_report(data_root_path: str | os.PathLike | None = None) -> dict:
    """What this machine offers the course: versions, devices, fast mode, and which data are found."""
    import platform

    import torchvision

    root = data_root(data_root_path)
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device (auto)": str(pick_device("auto")),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
        "cpu threads": torch.get_num_threads(),
        "fast mode (COURSE_LIB_FAST)": fast_mode(),
        "embedded MNIST subset": "present" if EMBEDDED_MNIST.is_file() else "MISSING: reinstall course_lib",
        "data root": str(root),
        "full MNIST": "found" if (root / "MNIST" / "raw").is_dir() else "not found (optional)",
        "Fashion-MNIST": "found" if (root / "FashionMNIST" / "raw").is_dir() else "not found (optional)",
        "CelebA": "found"
        if (root / "celeba" / "img_align_celeba").is_dir()
        else "not found (optional: 09 trains your own face model on it; nothing else needs it)",
    }
    return report


def setup_lines() -> list[str]:
    """What every notebook's setup cell prints: which course_lib, the device training will use, fast mode, and
    the folders data, caches and runs go to (each overridable by the environment variable it names)."""
    import course_lib
    from course_lib.core.runtime import CACHE_ENV, DATA_ENV, RUNS_ENV, cache_dir, runs_root

    device = pick_device("auto")
    where = f"{device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    return [
        f"course_lib {getattr(course_lib, '__version__', '?')} from {os.path.dirname(course_lib.__file__)}",
        f"device: {where}" + ("" if device.type != "cpu" else " (no GPU found: training runs on the CPU)"),
        f"fast mode (COURSE_LIB_FAST): {'on' if fast_mode() else 'off'}",
        f"data: {data_root()} (${DATA_ENV})",
        f"cache: {cache_dir()} (${CACHE_ENV})",
        f"runs shared between notebooks: {runs_root()} (${RUNS_ENV})",
    ]


def print_setup() -> None:
    """Print `setup_lines()` (the last line of every notebook's setup cell)."""
    for line in setup_lines():
        print(line)
