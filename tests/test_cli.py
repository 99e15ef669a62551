import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from course_lib.cli import main

TINY = ["--steps", "3", "--batch-size", "16", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    cfg = out.parent / "tiny.json"
    cfg.write_text('{"width": 8, "latent_dim": 16, "log_every": 1}')
    assert main(["train", "--out", str(out), "--config", str(cfg), *TINY]) == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    for name in ("samples.png", "losses.png", "log.jsonl", "config.json", "checkpoints/last.pt"):
        assert (run_dir / name).is_file()


def test_resume_continues_to_more_steps(run_dir, capsys):
    assert main(["train", "--resume", str(run_dir), "--steps", "5", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 5


def test_sample_png_and_npz(run_dir, tmp_path):
    assert main(["sample", str(run_dir), "--n", "10", "--out", str(tmp_path / "grid.png"), "--device", "cpu"]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 28 * 3
    assert (
        main(
            [
                "sample",
                str(run_dir / "checkpoints" / "last.pt"),
                "--n",
                "10",
                "--out",
                str(tmp_path / "s.npz"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--out", "{tmp}/x", "--dataset", "imagenet"], "unknown dataset"),
        (["train", "--out", "{tmp}/x", "--batch-size", "0"], "batch_size must be a positive integer"),
        (["train", "--out", "{tmp}/x", "--steps", "3", "--epochs", "1"], "not both"),
        (["train", "--out", "{tmp}/x", "--device", "cuda:7"], "CUDA is not available"),
        (["train", "--out", "{tmp}/x", "--config", "{tmp}/nope.yaml"], "not found"),
        (["train", "--resume", "{tmp}"], "without checkpoints/last.pt"),
        (["sample", "{tmp}/missing.pt", "--out", "{tmp}/g.png"], "no checkpoint at"),
        (["sample", "{tmp}/missing.pt", "--out", "{tmp}/g.jpg"], "must end in .png"),
    ],
)
def test_bad_arguments_give_one_line_errors(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_existing_run_is_not_overwritten(run_dir, capsys):
    assert main(["train", "--out", str(run_dir), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_corrupt_checkpoint_from_the_shell(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "sample", str(bad), "--out", str(tmp_path / "g.png")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "bad.pt" in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_help_explains_each_command():
    for command in ("train", "sample"):
        proc = subprocess.run(
            [sys.executable, "-m", "course_lib.cli", command, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "--out" in proc.stdout
