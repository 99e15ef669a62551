"""Notebooks 09 and 10 in the situations a student meets (fast mode, a fresh kernel each):
(a) no CelebA anywhere, (b) CelebA on a CPU. (c), a GPU, cannot run here: the recipe choice it depends on is
tested in test_pretrained.py (`celeba_recipe`). nbval runs both notebooks in CI's own environment as well."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _run(name: str, env: dict, tmp_path: Path) -> list[str]:
    """Execute a notebook with `env` added to the kernel's environment; the text output of each code cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        ).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            texts.append("".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"))
    return texts


def _environment(tmp_path: Path, data: Path) -> dict:
    return {
        "COURSE_LIB_FAST": "1",
        "COURSE_LIB_DATA": str(data),
        "COURSE_LIB_CACHE": str(tmp_path / "cache"),
        "COURSE_LIB_CELEBA_RUN": str(tmp_path / "run"),
        "COURSE_LIB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def _stand_in_celeba(root: Path, n: int = 40) -> Path:
    """A CelebA-shaped folder of smooth random 178x218 JPEGs: tests the data path, not the faces."""
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        coarse = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((178, 218), Image.BICUBIC).save(folder / f"{i + 1:06d}.jpg", quality=90)
    return root


def test_notebook_09_without_celeba_shows_the_shipped_faces(tmp_path):
    out = "\n".join(_run("09_dcgan_celeba.ipynb", _environment(tmp_path, tmp_path / "empty"), tmp_path))
    assert "case (a) no CelebA" in out
    assert "celeba-dcgan:" in out and "steps at batch" in out
    assert "img_align_celeba.zip" in out  # how to get the data
    assert out.count("skipped: no CelebA") >= 4
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written


def test_notebook_09_with_celeba_on_a_cpu_estimates_then_trains(tmp_path):
    root = _stand_in_celeba(tmp_path / "data")
    texts = _run("09_dcgan_celeba.ipynb", _environment(tmp_path, root), tmp_path)
    out = "\n".join(texts)
    assert "case (b) CelebA on cpu: the cpu recipe celeba64_cpu.yaml" in out
    estimate = next(t for t in texts if "s a step measured here" in t)
    training = next(t for t in texts if "finished at step" in t)
    assert texts.index(estimate) < texts.index(training)  # the estimate is printed before training starts
    assert "finished at step 12" in training


def test_notebook_10_runs_on_the_shipped_faces_without_celeba(tmp_path):
    out = "\n".join(_run("10_truncation_and_interpolation.ipynb", _environment(tmp_path, tmp_path / "empty"), tmp_path))
    assert "sliders use the shipped face generator celeba-dcgan" in out
    assert "Smiling" in out and "Eyeglasses" in out and "Male" in out
    report = json.loads((NOTEBOOKS.parent / "docs" / "results" / "celeba_dcgan" / "report.json").read_text())
    base = report["truncation_sweep_pixels"]["rows"][0]
    assert f"{base['n_generated']:,} samples per setting vs {base['n_real']:,} real faces" in out
    assert report["readings"]["pixel_sweep"].replace("**", "") in out  # the verdict computed from the numbers


def _report_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_pretrained_celeba_dcgan", NOTEBOOKS.parent / "scripts" / "train_pretrained_celeba_dcgan.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixel_rows(precision_none=0.90, recall_none=0.10, mild=(0.95, 0.08), contrast_strong=15.0):
    rows = [
        {
            "kind": "none",
            "value": None,
            "precision": precision_none,
            "recall": recall_none,
            "contrast": 45.0,
            "fd_pixels": 2.0,
            "n_generated": 1000,
        }
    ]
    for kind, value in (
        ("tau", 0.5),
        ("tau", 1.0),
        ("tau", 1.5),
        ("tau", 2.0),
        ("psi", 0.5),
        ("psi", 0.7),
        ("psi", 0.85),
    ):
        strong = (kind, value) == ("tau", 0.5)
        p, r = mild if value in (2.0, 0.85) else (0.9, 0.0)
        rows.append(
            {
                "kind": kind,
                "value": value,
                "precision": p,
                "recall": r,
                "fd_pixels": 30.0 if strong else 5.0,
                "contrast": contrast_strong if strong else 40.0,
                "n_generated": 1000,
            }
        )
    return rows


def test_face_report_readings_follow_the_numbers_not_a_script():
    """The report's 'What it shows' paragraphs (printed by notebook 10) claim a trade-off or fading only when the
    numbers show it."""
    script = _report_script()
    textbook = script.truncation_paragraph(_pixel_rows())
    assert "is the textbook trade-off" in textbook and "fade" in textbook
    no_trade = script.truncation_paragraph(_pixel_rows(mild=(0.85, 0.12), contrast_strong=44.0))
    assert "does not show the textbook trade-off" in no_trade and "no marked fading" in no_trade
    base = {"fid": 100.0, "precision": 0.30, "recall": 0.20}
    sweep = [
        {"kind": k, "value": v, "fid": f, "precision": p, "recall": r}
        for k, v, f, p, r in (
            ("tau", 0.5, 150.0, 0.35, 0.01),
            ("tau", 2.0, 101.0, 0.40, 0.15),
            ("psi", 0.5, 140.0, 0.20, 0.02),
        )
    ]
    reading = script.inception_sweep_paragraph(base, sweep)
    assert "Precision peaks at tau = 2.0 (0.400 against 0.300 untruncated)" in reading
    assert "no setting brings any of them close" not in reading
    zero = script.inception_sweep_paragraph({**base, "precision": 0.0}, [{**r, "precision": 0.0} for r in sweep])
    assert "no setting brings any of them close" in zero


def test_notebook_10_prints_the_face_report_readings():
    report = json.loads((NOTEBOOKS.parent / "docs" / "results" / "celeba_dcgan" / "report.json").read_text())
    assert set(report["readings"]) == {"inception_sweep", "pixel_sweep", "gap"}
    source = (NOTEBOOKS.parent / "solutions" / "10_truncation_and_interpolation.ipynb").read_text()
    assert 'face_report[\\"readings\\"][\\"pixel_sweep\\"]' in source
    assert 'face_report[\\"readings\\"][\\"inception_sweep\\"]' in source
