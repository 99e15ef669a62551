"""The CUDA speed helpers: every choice resolves sensibly without CUDA, and compilation falls back cleanly."""

import warnings

import pytest
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.data import load_embedded_mnist
from course_lib.nn.models import DCGANDiscriminator
from course_lib.training import TrainConfig, Trainer, speed

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU to exist


def test_auto_means_cuda_only():
    assert speed.resolve("auto", CUDA) and not speed.resolve("auto", CPU)
    assert speed.resolve("on", CPU) and not speed.resolve("off", CUDA)
    with pytest.raises(ConfigError, match="compile must be one of"):
        speed.resolve("yes", CPU, "compile")


def test_optimizer_choice():
    assert speed.optimizer_impl("auto", CPU) == "for-loop"  # PyTorch's CPU default, as the plain loop
    assert speed.optimizer_impl("auto", CUDA) == "fused"
    assert speed.optimizer_impl("auto", CUDA, "rmsprop") == "foreach"  # RMSprop has no fused kernel
    assert speed.optimizer_impl("foreach", CPU) == "foreach"
    with pytest.raises(ConfigError, match="optimizer_impl"):
        speed.optimizer_impl("fastest", CPU)


@pytest.mark.parametrize("impl", ["fused", "foreach", "for-loop"])
def test_every_adam_implementation_takes_the_closed_form_first_step(impl):
    # Adam's first step (Kingma & Ba, Algorithm 1, t = 1): m_hat = g, v_hat = g^2, so
    # p1 = p0 - lr * g / (|g| + eps).
    torch.manual_seed(0)
    p0 = torch.randn(5, 7)
    param = nn.Parameter(p0.clone())
    opt, used = speed.make_optimizer([param], "adam", lr=1e-2, betas=(0.5, 0.999), device=CPU, impl=impl)
    assert used == impl
    grad = torch.randn(5, 7)
    param.grad = grad.clone()
    opt.step()
    torch.testing.assert_close(param.data, p0 - 1e-2 * grad / (grad.abs() + 1e-8), rtol=0, atol=1e-6)


def test_channels_last_conversion_keeps_outputs():
    torch.manual_seed(0)
    D = DCGANDiscriminator(32, 3, 8)
    x = torch.randn(4, 3, 32, 32)
    expected = D(x)
    speed.to_channels_last(D)
    assert D.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(D(speed.channels_last_batch(x)), expected, rtol=1e-5, atol=1e-5)


def test_data_on_device_choice():
    assert not speed.use_data_on_device("auto", 10, CPU)
    assert speed.use_data_on_device("on", 10, CPU) and not speed.use_data_on_device("off", 10, CUDA)
    assert not speed.data_fits_on_device(10, CPU)


# ----------------------------------------------------------------------------------- compile
def _model():
    torch.manual_seed(0)
    return DCGANDiscriminator(32, 3, 8)


def test_compile_auto_stays_eager_on_cpu_and_says_why():
    model = _model()
    result = speed.maybe_compile(model, "auto", CPU)
    assert result.fn is model and not result.compiled and "CUDA only" in result.reason
    off = speed.maybe_compile(model, "off", CUDA)
    assert off.fn is model and off.reason == "compile: off"
    blocked = speed.maybe_compile(model, "on", CUDA, unsupported="double backward")
    assert not blocked.compiled and "double backward" in blocked.reason


def test_compile_unavailable_falls_back(monkeypatch):
    monkeypatch.delattr(torch, "compile")
    model = _model()
    result = speed.maybe_compile(model, "on", CPU)
    assert result.fn is model and not result.compiled and "no torch.compile" in result.reason


def _broken_backend(gm, example_inputs):
    raise RuntimeError("Cannot find a working triton installation")


def test_compiler_failure_is_caught_by_the_probe_and_leaves_the_module_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 32, 32)
    with pytest.warns(RuntimeWarning, match="triton"):
        result = speed.maybe_compile(model, "on", CPU, example=(x,), backend=_broken_backend)
    assert result.fn is model and not result.compiled and "triton" in result.reason
    for k, v in model.state_dict().items():  # the probe ran on a copy: batch-norm statistics unchanged
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_backward_compiler_failure_is_caught_too():
    from torch._dynamo.backends.common import aot_autograd

    def fails_in_backward(gm, example_inputs):
        raise RuntimeError("backward lowering failed")

    backend = aot_autograd(fw_compiler=lambda gm, ex: gm.forward, bw_compiler=fails_in_backward)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = speed.maybe_compile(_model(), "on", CPU, example=(torch.randn(4, 3, 32, 32),), backend=backend)
    assert not result.compiled and "backward lowering failed" in result.reason


def test_a_working_compiler_gives_the_same_outputs_and_gradients():
    model, reference = _model(), _model()
    x = torch.randn(4, 3, 32, 32)
    result = speed.maybe_compile(model, "on", CPU, example=(x,), backend="aot_eager")
    assert result.compiled and "aot_eager" in result.reason
    out, expected = result(x), reference(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    expected.sum().backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    assert set(model.state_dict()) == set(reference.state_dict())  # no "_orig_mod." prefixes in checkpoints


# ------------------------------------------------------------------------------ in the trainer
SMALL = {
    "model.width": 8,
    "model.latent_dim": 16,
    "optim.batch_size": 16,
    "optim.steps": 4,
    "run.log_every": 2,
    "run.sample_every": 100,
    "run.checkpoint_every": 2,
    "run.n_fixed": 16,
    "run.device": "cpu",
}
ALL_OFF = {
    "speed.amp": "off",
    "speed.channels_last": "off",
    "speed.compile": "off",
    "speed.optimizer_impl": "for-loop",
    "speed.data_on_device": "off",
}


@pytest.fixture(scope="module")
def digits():
    return load_embedded_mnist("train").subset(128)


def _same_models(a: Trainer, b: Trainer, exact: bool = True):
    for ma, mb in ((a.generator, b.generator), (a.discriminator, b.discriminator)):
        for (name, ta), tb in zip(ma.state_dict().items(), mb.state_dict().values()):
            if exact:
                assert torch.equal(ta, tb), name
            else:
                torch.testing.assert_close(ta, tb, rtol=1e-4, atol=1e-5, msg=name)


def test_auto_settings_on_cpu_are_the_plain_loop_exactly(digits):
    auto = Trainer(TrainConfig.from_dict(SMALL), data=digits, progress=False)
    assert auto.speed == {
        "device": "cpu",
        "amp": "off",
        "channels_last": False,
        "optimizer": "for-loop",
        "data_on_device": False,
        "compile_g": auto.speed["compile_g"],
        "compile_d": auto.speed["compile_d"],
        "world_size": 1,  # one process: no DistributedDataParallel
    }
    assert "CUDA only" in auto.speed["compile_g"] and "CUDA only" in auto.speed["compile_d"]
    auto.train()
    plain = Trainer(TrainConfig.from_dict({**SMALL, **ALL_OFF}), data=digits, progress=False).train()
    _same_models(auto, plain)
    assert auto.history == plain.history


def test_bad_speed_settings_are_config_errors():
    for bad in (
        {"compile": "yes"},
        {"channels_last": True},
        {"optimizer_impl": "apex"},
        {"compile_mode": "fast"},
        {"data_on_device": "gpu"},
    ):
        with pytest.raises(ConfigError, match="speed"):
            TrainConfig(speed=bad)


def test_compiled_training_matches_eager(digits, monkeypatch):
    # aot_eager: the TorchDynamo + AOTAutograd path of torch.compile without Inductor's code generation,
    # so the test needs no C compiler and takes seconds; the numbers must agree with eager mode.
    original = speed.maybe_compile
    monkeypatch.setattr(speed, "maybe_compile", lambda *a, **kw: original(*a, **kw, backend="aot_eager"))
    compiled = Trainer(TrainConfig.from_dict({**SMALL, "speed.compile": "on"}), data=digits, progress=False)
    assert compiled.g_train.compiled and compiled.d_train.compiled, compiled.speed
    compiled.train()
    eager = Trainer(TrainConfig.from_dict({**SMALL, "speed.compile": "off"}), data=digits, progress=False).train()
    _same_models(compiled, eager, exact=False)
    assert set(compiled.state_dict()["generator"]) == set(eager.state_dict()["generator"])


def test_a_broken_compiler_leaves_training_eager(digits, monkeypatch):
    original = speed.maybe_compile
    monkeypatch.setattr(speed, "maybe_compile", lambda *a, **kw: original(*a, **kw, backend=_broken_backend))
    with pytest.warns(RuntimeWarning, match="compile: failed"):
        trainer = Trainer(TrainConfig.from_dict({**SMALL, "speed.compile": "on"}), data=digits, progress=False)
    assert not trainer.g_train.compiled and "triton" in trainer.speed["compile_g"]
    trainer.train()
    plain = Trainer(TrainConfig.from_dict({**SMALL, "speed.compile": "off"}), data=digits, progress=False).train()
    _same_models(trainer, plain)  # the failed probe touched neither the models nor the noise stream


def test_channels_last_flips_and_fused_adam_resume_exactly_on_cpu(tmp_path, digits):
    cfg = {
        **SMALL,
        "speed.channels_last": "on",
        "data.flip": True,
        "speed.optimizer_impl": "fused",
        "speed.data_on_device": "on",
        "optim.steps": 6,
    }
    straight = Trainer(TrainConfig.from_dict(cfg), data=digits, progress=False).train()
    assert straight.speed["channels_last"] and straight.speed["optimizer"] == "fused"
    assert straight.discriminator.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    Trainer(TrainConfig.from_dict(cfg), tmp_path / "split", data=digits, progress=False).train(steps=2)
    resumed = Trainer.resume(tmp_path / "split", data=digits, progress=False)
    assert resumed.step == 2
    resumed.train()
    _same_models(straight, resumed)
    assert resumed.history == straight.history
    # channels_last and fused Adam change only the arithmetic's order: the same run, up to rounding.
    plain = Trainer(TrainConfig.from_dict({**cfg, **ALL_OFF}), data=digits, progress=False).train()
    _same_models(straight, plain, exact=False)
