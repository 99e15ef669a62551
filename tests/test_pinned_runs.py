"""Short runs of every training variant reproduce the numbers recorded before the trainer was rebuilt
from loss terms and callbacks (tests/fixtures/pinned_short_runs.json, written by the pre-refactor
trainer at commit f3a5453: per-step losses, D outputs, the extra logged terms, and the sum of 4
generated images).

On the machine that recorded them the numbers are bit-identical; the tolerance only absorbs the last
bits that another CPU's vector units may round differently. A change of behaviour (another term order,
a missing regulariser, a different random draw) moves them by far more.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from course_lib.data import load_dataset
from course_lib.training import TrainConfig, Trainer

PINNED = json.loads((Path(__file__).parent / "fixtures" / "pinned_short_runs.json").read_text())
VARIANTS = {
    "baseline": {},
    "minimax": {"loss.name": "minimax"},
    "lsgan": {"preset": "lsgan"},
    "hinge": {"preset": "hinge"},
    "wgan-clip": {"preset": "wgan-clip", "optim.d_steps": 2},
    "wgan-gp": {"preset": "wgan-gp", "optim.d_steps": 2},
    "spectral-norm": {"preset": "spectral-norm"},
    "label-smoothing": {"preset": "label-smoothing"},
    "instance-noise": {"preset": "instance-noise"},
    "feature-matching": {"preset": "feature-matching"},
    "minibatch": {"model.minibatch_discrimination": 5, "model.minibatch_stddev": True},
    "historical-averaging": {"preset": "historical-averaging"},
    "ema": {"callbacks": [{"name": "ema", "decay": 0.9}]},
    "upsample": {"model.g_upsample": "nearest"},
    "cgan": {"preset": "cgan"},
    "acgan": {"preset": "acgan"},
    "infogan": {"preset": "infogan"},
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", split="train", limit=256)


def test_every_pinned_variant_is_run():
    assert set(VARIANTS) == set(PINNED)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_short_run_matches_the_pre_refactor_numbers(name, digits):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the recording used one thread: same reduction order
    try:
        cfg = TrainConfig.from_dict(
            {
                "model.width": 8,
                "model.latent_dim": 16,
                "optim.batch_size": 16,
                "optim.steps": 6,
                "run.log_every": 1,
                "run.sample_every": 100,
                "run.checkpoint_every": 100,
                "run.seed": 3,
                **VARIANTS[name],
            }
        )
        trainer = Trainer(cfg, data=digits, progress=False).train()
        z = torch.randn(4, trainer.latent_dim, generator=torch.Generator().manual_seed(9))
        labels = torch.arange(4) % 10 if trainer.conditioning.generator_labels else None
        sample_sum = float(trainer.generate(z, labels).double().sum())
    finally:
        torch.set_num_threads(threads)
    expected_rows, expected_sum = PINNED[name][:-1], PINNED[name][-1]["sample_sum"]
    assert len(trainer.history) == len(expected_rows)
    for row, expected in zip(trainer.history, expected_rows):
        assert set(row) == set(expected), f"{name}: logged values changed: {sorted(row)} vs {sorted(expected)}"
        for key, value in expected.items():
            assert math.isclose(row[key], value, rel_tol=1e-5, abs_tol=1e-7), (name, row["step"], key, row[key], value)
    assert math.isclose(sample_sum, expected_sum, rel_tol=1e-5, abs_tol=1e-5)
