"""The diversity controller (course_lib.training.callbacks.diversity_controller) and the empirical Lipschitz constant (course_lib.metrics.lipschitz)."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.core.images import to_float
from course_lib.data import load_embedded_mnist
from course_lib.metrics import GeneratorEvaluator, empirical_lipschitz
from course_lib.metrics.diversity import mean_pairwise_distance
from course_lib.metrics.lipschitz import lipschitz_ratios
from course_lib.nn.models import DCGANGenerator
from course_lib.training import TrainConfig, Trainer
from course_lib.training.callbacks.diversity_controller import (
    DiversityController,
    golden_section_search,
    interpolate_states,
    load_state,
    snapshot,
)
from course_lib.training.context import StepContext

SMALL = {
    "model.width": 8,
    "model.latent_dim": 16,
    "optim.batch_size": 16,
    "run.log_every": 2,
    "run.sample_every": 100,
    "run.checkpoint_every": 4,
    "run.n_fixed": 16,
    "run.device": "cpu",
}


@pytest.fixture(scope="module")
def digits():
    return load_embedded_mnist("train").subset(256)


def _config(**kw):
    """SMALL with keyword settings: steps, or callbacks."""
    settings = {("optim.steps" if key == "steps" else key): value for key, value in kw.items()}
    return TrainConfig.from_dict({**SMALL, **settings})


# ------------------------------------------------------------------------------- interpolation
def _generator_with_statistics(seed: int) -> DCGANGenerator:
    torch.manual_seed(seed)
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=8)
    for _ in range(seed + 1):  # train-mode passes move the batch-norm running statistics and counters
        g(torch.randn(4, 8))
    return g


def test_interpolation_reproduces_both_checkpoints_exactly_buffers_included():
    prev, cur = snapshot(_generator_with_statistics(0)), snapshot(_generator_with_statistics(2))
    assert any("running_var" in k for k in cur) and any("num_batches_tracked" in k for k in cur)
    assert not torch.equal(prev["net.1.running_mean"], cur["net.1.running_mean"])
    at0, at1, half = (interpolate_states(prev, cur, r) for r in (0.0, 1.0, 0.5))
    for key in cur:
        if cur[key].is_floating_point():
            assert torch.equal(at0[key], prev[key]), key
            # the midpoint against the closed form, computed independently in float64
            expected = (prev[key].double() + cur[key].double()) / 2
            assert torch.allclose(half[key].double(), expected, rtol=0, atol=1e-6), key
        else:  # integer buffers take the current value at every r
            assert torch.equal(at0[key], cur[key]) and torch.equal(half[key], cur[key]), key
        assert torch.equal(at1[key], cur[key]), key
    # loading keeps the module's own parameter tensors (the optimiser still points at them)
    g = _generator_with_statistics(1)
    ids = [id(p) for p in g.parameters()]
    load_state(g, at0)
    assert [id(p) for p in g.parameters()] == ids
    assert all(torch.equal(v, at0[k]) for k, v in g.state_dict().items())


def test_interpolation_rejects_mismatched_states_and_bad_weights():
    a = snapshot(nn.Linear(2, 2))
    with pytest.raises(Exception, match="different entries"):
        interpolate_states(a, {"weight": a["weight"]}, 0.5)
    with pytest.raises(Exception, match=r"\[0, 1\]"):
        interpolate_states(a, a, 1.5)


# ------------------------------------------------------------------------ choosing r (synthetic)
class ScalarGenerator(nn.Module):
    """G(z) = w z with one scalar parameter: the score below is then a known function of r."""

    latent_dim = 2
    channels = 1

    def __init__(self, w: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(w)))

    def forward(self, z):
        return self.w * z


def _context_for(generator, steps=100, **extra):
    """A StepContext (what callbacks receive instead of the trainer) holding just this generator."""
    logged = extra.pop("logged", {})
    ctx = StepContext(generator=generator, config=TrainConfig.from_dict({"optim.steps": steps}), channels=1, **extra)
    ctx.log = logged.update
    return ctx


def _two_decisions(controller, w_prev=0.0, w_cur=1.0):
    """prev checkpoint at w_prev (step 1), current at w_cur (step 2): theta(r) has w = w_prev + r (w_cur - w_prev)."""
    trainer = _context_for(ScalarGenerator(w_prev))
    trainer.step = 1
    controller.on_step_end(trainer, {})
    with torch.no_grad():
        trainer.generator.w.fill_(w_cur)
    trainer.step = 2
    controller.on_step_end(trainer, {})
    return trainer


def peak_at(target):
    return lambda generator, noise: -((generator.w.item() - target) ** 2)


@pytest.mark.parametrize("target,expected", [(0.7, 0.75), (0.1, 0.0), (0.95, 1.0), (0.4, 0.5)])
def test_grid_search_picks_the_maximiser_of_the_score_it_is_handed(target, expected):
    controller = DiversityController(interval=1, score=peak_at(target), final_measures=[])
    trainer = _two_decisions(controller)
    decision = controller.decisions()[-1]
    assert decision["chosen_r"] == expected
    assert [e["r"] for e in decision["evaluations"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for e in decision["evaluations"]:  # the logged score of each r is the function's value there
        assert e["score"] == pytest.approx(-((e["r"] - target) ** 2), abs=1e-12)
    assert trainer.generator.w.item() == expected  # training continues from theta(r*)
    assert controller.prev["w"].item() == expected  # ... which is the next decision's theta_prev


def test_golden_section_search_finds_an_interior_maximum():
    controller = DiversityController(
        interval=1, score=peak_at(0.37), search="golden", golden_evals=12, final_measures=[]
    )
    _two_decisions(controller, w_prev=-1.0, w_cur=1.0)  # w(r) = 2r - 1: the peak w = 0.37 is at r = 0.685
    decision = controller.decisions()[-1]
    assert decision["chosen_r"] == pytest.approx(0.685, abs=0.618**11)
    assert len(decision["evaluations"]) == 2 + 12  # both ends and the interior points, none twice

    r, _ = golden_section_search(lambda r: math.sin(3 * r), 20)  # max at pi / 6
    assert r == pytest.approx(math.pi / 6, abs=1e-3)


def test_select_mode_restores_the_best_generator_at_the_end():
    controller = DiversityController(interval=1, score=lambda g, z: g.w.item(), mode="select", final_measures=[])
    trainer = _context_for(ScalarGenerator(), steps=3)
    for step, w in ((1, 3.0), (2, 5.0), (3, 4.0)):
        with torch.no_grad():
            trainer.generator.w.fill_(w)
        trainer.step = step
        controller.on_step_end(trainer, {})
        if step < 3:
            assert trainer.generator.w.item() == w  # training itself is never changed
    controller.on_train_end(trainer)
    assert trainer.generator.w.item() == 5.0 and controller.best_step == 2
    assert controller.log[-1]["event"] == "restored best"
    assert controller.summary()["best_step"] == 2


def test_budget_stops_decisions_and_is_logged():
    controller = DiversityController(interval=1, score=peak_at(0.5), budget_evals=6, final_measures=[])
    trainer = _context_for(ScalarGenerator())
    for step in range(1, 6):
        trainer.step = step
        controller.on_step_end(trainer, {})
    # decision 1 costs 1 evaluation, decision 2 five: the budget of 6 is then spent
    assert [e["step"] for e in controller.decisions()] == [1, 2]
    assert controller.log[-1]["event"] == "budget exhausted" and controller.summary()["budget_exhausted"]
    assert controller.evaluations == 6


def test_knob_lowers_lr_d_when_the_score_falls_and_restores_it_when_it_rises():
    scores = iter([1.0, 0.5, 0.2, 0.9, 2.0, 3.0])
    opt_d = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-4)
    controller = DiversityController(
        interval=1,
        score=lambda g, z: next(scores),
        mode="observe",
        knob="lr_d",
        knob_factor=2.0,
        knob_range=[0.25, 1.0],
        final_measures=[],
    )
    trainer = _context_for(ScalarGenerator(), opt_d=opt_d)
    multipliers = []
    for step in range(1, 7):
        trainer.step = step
        controller.on_step_end(trainer, {})
        multipliers.append(controller.knob_multiplier)
        assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * controller.knob_multiplier)
    assert multipliers == [1.0, 0.5, 0.25, 0.5, 1.0, 1.0]  # clamped to knob_range


def test_instance_noise_knob_needs_instance_noise():
    controller = DiversityController(interval=1, score=peak_at(0.5), knob="instance_noise", final_measures=[])
    trainer = _context_for(ScalarGenerator())
    trainer.step = 1
    with pytest.raises(ConfigError, match="instance noise switched on .*instance-noise"):
        controller.on_step_end(trainer, {})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mode": "sometimes"}, "mode"),
        ({"score": "sharpness"}, "unknown measure"),
        ({"score": {"is": -1.0}}, "non-negative"),
        ({"r_grid": [0.0, 2.0]}, "r_grid"),
        ({"interval": 0}, "interval"),
        ({"search": "random"}, "search"),
        ({"knob": "lr_g"}, "knob"),
        ({"n_eval": 2}, "n_eval"),
        ({"extractor": "clip"}, "extractor"),
        ({"knob_range": [2.0, 3.0]}, "knob_range"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DiversityController(**kwargs)


# ---------------------------------------------------------------- not disturbing training
def test_training_with_an_idle_controller_is_identical_to_training_without(tmp_path, digits, same_training_state):
    plain = Trainer(_config(steps=6), data=digits, progress=False).train()
    rng_plain = torch.get_rng_state()
    idle = DiversityController(interval=10_000, score="is", n_eval=64)  # never decides; measures at the end
    with_hook = Trainer(_config(steps=6), tmp_path, data=digits, callbacks=[idle], progress=False).train()
    assert torch.equal(torch.get_rng_state(), rng_plain)
    same_training_state(plain, with_hook)
    assert idle.decisions() == [] and set(idle.final) == {"is", "diversity", "lipschitz", "lipschitz_l1"}


def test_evaluating_does_not_shift_the_training_stream(digits, same_training_state):
    """Controllers that do evaluate, but keep r = 1, leave training bit for bit unchanged."""
    plain = Trainer(_config(steps=6), data=digits, progress=False).train()
    rng_plain = torch.get_rng_state()
    observing = DiversityController(interval=2, score={"is": 1.0, "diversity": 0.5}, mode="observe", n_eval=64)
    a = Trainer(_config(steps=6), data=digits, callbacks=[observing], progress=False).train()
    assert torch.equal(torch.get_rng_state(), rng_plain)
    same_training_state(plain, a)
    # an interpolating controller whose score is flat tries r = 0 ... 1 and keeps r = 1 (ties go to the larger r)
    flat = DiversityController(
        interval=2, score=lambda g, z: 0.0, n_eval=64, measures=["is", "lipschitz"], final_measures=[]
    )
    b = Trainer(_config(steps=6), data=digits, callbacks=[flat], progress=False).train()
    assert [d["chosen_r"] for d in flat.decisions()] == [1.0, 1.0, 1.0]
    assert len(flat.decisions()[-1]["evaluations"]) == 5
    same_training_state(plain, b)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in b.generator.parameters())


def test_interpolating_run_resumes_exactly_and_logs_to_the_run_folder(tmp_path, digits, same_training_state):
    spec = {"interval": 3, "score": "is", "n_eval": 64, "final_measures": ["lipschitz"]}
    straight_c = DiversityController(**spec)
    straight = Trainer(
        _config(steps=8), tmp_path / "straight", data=digits, callbacks=[straight_c], progress=False
    ).train()
    # the other run names the callback in its config, as `course-lib train --config` and experiments do
    hooked = _config(steps=8, callbacks=[{"name": "diversity_controller", **spec}])
    Trainer(hooked, tmp_path / "split", data=digits, progress=False).train(steps=4)
    resumed = Trainer.resume(tmp_path / "split", data=digits, progress=False)  # rebuilds the callback from the config
    resumed_c = resumed.callbacks[0]
    assert isinstance(resumed_c, DiversityController) and len(resumed_c.decisions()) == 1
    resumed.train()
    same_training_state(straight, resumed)
    timeless = lambda log: [{k: v for k, v in e.items() if k != "seconds"} for e in log]
    assert timeless(resumed_c.log) == timeless(straight_c.log)
    assert [d["step"] for d in straight_c.decisions()] == [3, 6]
    lines = (tmp_path / "straight" / "controller.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == straight_c.log
    rows = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    logged = [r["controller_r"] for r in rows if "controller_r" in r]  # the decisions land in the training log
    assert logged == [d["chosen_r"] for d in straight_c.decisions()]
    summary = json.loads(json.dumps(straight_c.summary()))
    assert (
        summary["decisions"] == 2
        and summary["evaluations"] == 1 + 5
        and straight.callback_seconds["diversity_controller"] > 0
    )
    assert summary["final_lipschitz"] > 0


# ---------------------------------------------------------------------------- the measures
def test_lipschitz_estimate_equals_the_true_constant_of_a_linear_generator():
    torch.manual_seed(0)
    linear = nn.Linear(6, 30).double()
    linear.latent_dim = 6
    A = linear.weight.detach().numpy()
    for p, true in ((2, np.linalg.norm(A, 2)), (1, np.linalg.norm(A, 1))):  # spectral norm; max column sum
        sampled = empirical_lipschitz(linear, n_pairs=200, p=p, seed=1)
        assert sampled.value <= true * (1 + 1e-12)  # sampled pairs give a lower bound
        refined = empirical_lipschitz(linear, n_pairs=200, p=p, seed=1, refine_steps=40)
        assert refined.value == pytest.approx(true, rel=1e-9), p
    # in two latent dimensions, many sampled directions already come close to the supremum
    plane = nn.Linear(2, 5).double()
    plane.latent_dim = 2
    est = empirical_lipschitz(plane, n_pairs=20_000, p=2, seed=0)
    assert est.value == pytest.approx(np.linalg.norm(plane.weight.detach().numpy(), 2), rel=1e-3)


def test_lipschitz_of_a_batch_norm_generator_leaves_its_gradients_and_mode_alone():
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=8)
    result = empirical_lipschitz(g, n_pairs=20, p=2, radius=0.5, refine_steps=2, refine_top=4)
    assert result.value >= result.details["sampled_max"] >= result.details["mean_ratio"] > 0
    assert all(p.grad is None for p in g.parameters()) and g.training
    with pytest.raises(Exception, match="p = 1 or p = 2"):
        empirical_lipschitz(g, p=3)
    z = torch.zeros(2, 8)
    with pytest.raises(Exception, match="identical latents"):
        lipschitz_ratios(z, z, z, z)


def test_pairwise_diversity_of_identical_samples_is_zero_and_of_the_data_itself_one(digits):
    same = torch.ones(10, 7)
    assert mean_pairwise_distance(same) == 0.0
    real = digits.images[:64]
    measurer = GeneratorEvaluator(
        ["diversity", "fid", "lipschitz", "is"], real, noise=torch.randn(64, 4), extractor="mnist"
    )
    constant = measurer(lambda z: torch.full((len(z), 1, 28, 28), -1.0))
    assert constant["diversity"] == 0.0 and constant["lipschitz"] == 0.0
    assert constant["is"] == pytest.approx(1.0)  # one image: p(y|x) = p(y), KL = 0
    as_generated = to_float(real)
    itself = measurer(lambda z: as_generated[: len(z)])  # the real images themselves, in a tanh generator's range
    assert itself["diversity"] == pytest.approx(1.0, abs=1e-6)
    assert abs(itself["fid"]) < 1e-3
