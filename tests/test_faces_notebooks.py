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


def test_face_report_does_not_claim_a_precision_peak_inside_the_intervals():
    script = _report_script()
    ci = lambda lo, hi: {"low": lo, "high": hi, "level": 0.95, "method": "bootstrap"}  # noqa: E731
    base = {"fid": 100.0, "precision": 0.30, "precision_ci": ci(0.26, 0.34), "recall": 0.20}
    sweep = [
        {"kind": "tau", "value": 2.0, "fid": 101.0, "precision": 0.33, "precision_ci": ci(0.29, 0.37), "recall": 0.1},
        {"kind": "psi", "value": 0.5, "fid": 140.0, "precision": 0.20, "precision_ci": ci(0.16, 0.24), "recall": 0.0},
    ]
    reading = script.inception_sweep_paragraph(base, sweep)
    assert "is not clearly above the untruncated 0.300 (their 95% intervals overlap)" in reading
    clear = [{**sweep[0], "precision": 0.45, "precision_ci": ci(0.41, 0.49)}, sweep[1]]
    assert "Precision peaks at tau = 2.0 (0.450 against 0.300 untruncated)" in script.inception_sweep_paragraph(
        base, clear
    )


def test_face_protocol_quality_intervals_on_features_with_a_known_answer():
    """quality_with_intervals on two draws of one Gaussian (FID near 0, KID's interval around 0, precision and
    recall near the real-vs-real level) and on a shifted copy (every interval clear of the identical case)."""
    import torch

    from course_lib.metrics import frechet_distance, gaussian_statistics
    from course_lib.metrics.frechet import FrechetToReference

    script = _report_script()
    g = torch.Generator().manual_seed(0)
    real, same = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    to_real = FrechetToReference(*gaussian_statistics(real))
    q = script.quality_with_intervals(same, real, to_real, resamples=20, kid_blocks=5)
    assert q["fid"] == pytest.approx(frechet_distance(*gaussian_statistics(same), *gaussian_statistics(real)))
    assert q["kid_x1000_ci"]["low"] < 0 < q["kid_x1000_ci"]["high"]
    for key in ("precision", "recall"):
        assert q[f"{key}_ci"]["low"] <= q[key] <= q[f"{key}_ci"]["high"]
    far = script.quality_with_intervals(same + 1.0, real, to_real, resamples=20, kid_blocks=5)
    assert far["fid"] == pytest.approx(16.0, rel=0.3)  # |mu shift|^2 = 16 x 1.0^2
    assert far["kid_x1000_ci"]["low"] > q["kid_x1000_ci"]["high"]
    assert far["precision_ci"]["high"] < q["precision_ci"]["low"]
    assert script.cell(far, "fid", 1).startswith(f"{far['fid']:.1f} ± ")
