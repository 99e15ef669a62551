"""The TensorBoard callback (issue 30): its event files hold every log row's scalars and the progress grids,
read back with tensorboard's own event reader."""

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from course_lib.core.errors import ConfigError
from course_lib.data import load_embedded_mnist
from course_lib.training import TrainConfig, Trainer


def test_event_file_holds_the_logged_scalars_and_the_sample_grids(tmp_path):
    config = TrainConfig.from_dict(
        {
            "model": {"width": 8, "latent_dim": 8},
            "optim": {"batch_size": 16, "steps": 5},
            "run": {"device": "cpu", "log_every": 2, "sample_every": 100, "checkpoint_every": 100, "n_fixed": 8},
            "callbacks.tensorboard.every": 2,  # the one flag: --set callbacks.tensorboard.every=2
        }
    )
    trainer = Trainer(config, tmp_path, data=load_embedded_mnist("train").subset(64), progress=False).train()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(events.Tags()["scalars"])
    for name in ("loss_d", "loss_g", "d_real", "d_fake"):
        logged = [(e.step, e.value) for e in events.Scalars(name)]
        expected = [(row["step"], row[name]) for row in trainer.history]
        assert [s for s, _ in logged] == [s for s, _ in expected] == [2, 4, 5]
        assert np.allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    grids = events.Images("samples")
    assert [g.step for g in grids] == [2, 4, 5]  # every 2 steps, and the last one
    assert all(g.width > 0 and g.height > 0 and g.encoded_image_string.startswith(b"\x89PNG") for g in grids)


def test_bad_settings_are_refused_when_the_config_is_read():
    with pytest.raises(ConfigError, match="every must be a positive"):
        TrainConfig.from_dict({"callbacks.tensorboard.every": 0})
