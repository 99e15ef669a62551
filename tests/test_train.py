import json

import pytest
import torch

from course_lib.core.errors import CheckpointError, ConfigError, TrainingDiverged
from course_lib.data import load_embedded_mnist
from course_lib.training import TrainConfig, Trainer, steps_for_epochs
from course_lib.training.checkpoint import load_checkpoint, load_generator, save_atomic

SMALL = {
    "model": {"width": 8, "latent_dim": 16},
    "optim": {"batch_size": 16},
    "run": {"log_every": 2, "sample_every": 4, "checkpoint_every": 4, "n_fixed": 16, "device": "cpu"},
}


@pytest.fixture(scope="module")
def digits():
    return load_embedded_mnist("train").subset(256)


def _config(settings: dict) -> TrainConfig:
    """SMALL with `settings` (dotted paths) over it."""
    return TrainConfig.from_dict({**SMALL, **settings})


@pytest.mark.parametrize("arch,d_steps", [("dcgan", 1), ("mlp", 2)])
def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path, digits, arch, d_steps, same_training_state):
    cfg = {"model.arch": arch, "optim.d_steps": d_steps, "optim.steps": 8, "model.width": 8 if arch == "dcgan" else 32}
    straight = Trainer(_config(cfg), tmp_path / "straight", data=digits, progress=False).train()

    first = Trainer(_config(cfg), tmp_path / "split", data=digits, progress=False).train(steps=4)
    del first
    resumed = Trainer.resume(tmp_path / "split", data=digits, progress=False)
    assert resumed.step == 4
    resumed.train()
    assert resumed.step == straight.step == 8
    same_training_state(straight, resumed)
    assert resumed.history == straight.history
    assert torch.equal(resumed.fixed_noise, straight.fixed_noise)


def test_run_folder_contents_and_log(tmp_path, digits):
    trainer = Trainer(_config({"optim.steps": 6}), tmp_path, data=digits, progress=False).train()
    for name in (
        "config.json",
        "log.jsonl",
        "losses.png",
        "samples.png",
        "checkpoints/last.pt",
        "samples/step_0000004.png",
        "samples/step_0000006.png",
    ):
        assert (tmp_path / name).is_file(), name
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert set(rows[0]) == {"step", "loss_d", "loss_g", "d_real", "d_fake"}
    assert all(0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1 for r in rows)
    assert json.loads((tmp_path / "config.json").read_text())["optim"]["steps"] == 6
    assert trainer.elapsed > 0


def test_checkpoint_round_trip_and_generator_loading(tmp_path, digits):
    trainer = Trainer(_config({"optim.steps": 4}), tmp_path, data=digits, progress=False).train()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["step"] == 4 and ckpt["config"]["data"]["image_size"] == 28 and ckpt["channels"] == 1
    G = load_generator(tmp_path / "checkpoints" / "last.pt")
    z = torch.randn(3, 16)
    assert torch.equal(G(z), trainer.generate(z))


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits):
    def poison(trainer, metrics):  # a callback that breaks the generator after step 5
        if trainer.step == 5:
            with torch.no_grad():
                next(trainer.generator.parameters()).fill_(float("nan"))

    trainer = Trainer(
        _config({"optim.steps": 12, "run.log_every": 1}), tmp_path, data=digits, callbacks=[poison], progress=False
    )
    with pytest.raises(TrainingDiverged, match="diverged at step 6.*last good checkpoint is kept"):
        trainer.train()
    good = load_checkpoint(tmp_path)
    assert good["step"] == 4
    assert all(torch.isfinite(p).all() for p in good["generator"].values())


def test_corrupt_and_foreign_checkpoints_get_clear_errors(tmp_path, digits):
    Trainer(
        _config({"optim.steps": 2, "run.checkpoint_every": 2}), tmp_path / "run", data=digits, progress=False
    ).train()
    good = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*truncated, corrupt"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a course_lib checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="without checkpoints/last.pt"):
        load_checkpoint(tmp_path)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "state.pt"
    save_atomic({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_atomic({"a": Unpicklable()}, path)
    assert torch.load(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary left behind


def test_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="unknown config section.*colour"):
        TrainConfig.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match="unknown setting.*model.colour"):
        TrainConfig.from_dict({"model": {"colour": "red"}})
    with pytest.raises(ConfigError, match="optim.batch_size"):
        TrainConfig(optim={"batch_size": 0})
    with pytest.raises(ConfigError, match="optim.lr_g"):
        TrainConfig.from_dict({"optim.lr_g": 5.0})
    with pytest.raises(ConfigError, match="unknown loss"):
        TrainConfig(loss={"name": "wasserstein-ish"})
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  steps: 7\n  batch_size: 32\n")
    assert TrainConfig.from_file(path).optim.steps == 7
    path.write_text("steps: [unclosed")
    with pytest.raises(ConfigError, match="cannot parse"):
        TrainConfig.from_file(path)


def test_defaults_follow_radford_et_al():
    cfg = TrainConfig()
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.beta1, cfg.optim.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    assert cfg.loss.name == "non-saturating" and cfg.optim.d_steps == 1 and cfg.loss.terms == []


def test_steps_for_epochs():
    assert steps_for_epochs(1, 10_000, 128) == 78
    assert steps_for_epochs(2, 10_000, 100, d_steps=2) == 100


def test_amp_falls_back_to_fp32_on_cpu(digits):
    trainer = Trainer(_config({"optim.steps": 1, "speed.amp": "auto"}), data=digits, progress=False)
    assert trainer.amp_dtype is None and trainer.scaler is None
    trainer.train()
    bf16 = Trainer(_config({"optim.steps": 1, "speed.amp": "bf16"}), data=digits, progress=False)
    assert bf16.amp_dtype == torch.bfloat16  # CPU autocast supports bfloat16
    bf16.train()
    assert all(torch.isfinite(p).all() for p in bf16.generator.parameters())
