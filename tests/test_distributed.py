"""Data-parallel training and sharded evaluation (issue 30), on the CPU with gloo at world size 2.

One spawn of two processes (the environment torchrun would set: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) serves most tests of the module: each rank trains the default loss, WGAN-GP (with the FID tracker),
feature matching, minibatch stddev and minibatch discrimination at per-rank batch b/2 for a few steps, resumes a
run whose rank 1 died (an earlier spawn) from its last checkpoint, computes sharded pixel features and evaluates a
generator with the sharded GeneratorEvaluator. The same runs in this process at batch b (world size 1) are the
reference: DistributedDataParallel averages per-rank gradients of per-sample means, so the two reach the same
parameters up to float rounding (minibatch stddev: against one process computing the statistic per rank's rows).

The generator is the MLP (no batch norm: PyTorch's SyncBatchNorm runs only on CUDA) and the discriminator the
DCGAN one with layer norm (the MLP discriminator's dropout draws per rank).

The multi-node tests at the end run docs/distributed.md's two-machine torchrun line as two one-process "nodes"
(a c10d rendezvous on 127.0.0.1) on a tiny experiment, and its sbatch script's body with stand-ins for srun and
scontrol.
"""

import contextlib
import json
import math
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from course_lib.core.errors import ConfigError
from course_lib.data import load_embedded_mnist
from course_lib.latent.pretrained import load_pretrained
from course_lib.metrics import GeneratorEvaluator, fid
from course_lib.metrics.inputs import as_image_source
from course_lib.metrics.sharded import sharded_features
from course_lib.nn import models as nn_models
from course_lib.nn.layers import MinibatchStdDev
from course_lib.training import TrainConfig, Trainer
from course_lib.training import trainer as trainer_module
from course_lib.training.callbacks.fid_tracker import FIDTracker
from course_lib.training.distributed import Distributed

WORLD = 2
GLOBAL_BATCH = 16
STEPS = 12
COMMON = {
    "model": {"arch": "dcgan", "width": 8, "latent_dim": 8, "d_norm": "layer"},
    "optim": {"batch_size": GLOBAL_BATCH, "steps": STEPS},
    "run": {"device": "cpu", "log_every": 4, "sample_every": 100, "checkpoint_every": 6, "n_fixed": 8, "seed": 3},
}
RUNS = {
    "non-saturating": {"callbacks": [{"name": "ema", "decay": 0.9}]},  # the EMA copy is taken on every rank
    "wgan-gp": {  # double backward under DDP; the FID tracker evaluates in shards on both ranks
        "preset": "wgan-gp",
        "optim.steps": 8,
        "optim.d_steps": 2,
        "callbacks": [{"name": "fid_tracker", "every": 4, "n_samples": 21, "extractor": "pixels", "at_end": False}],
    },
    "feature-matching": {"preset": "feature-matching", "optim.steps": 4},  # the batch means are all-reduced
    "minibatch-stddev": {"preset": "minibatch-stddev", "optim.steps": 6},  # statistics over each rank's rows
    "minibatch-discrimination": {  # every rank's projections all-gathered: each sample meets the global batch
        "preset": "minibatch-discrimination",
        "model.minibatch_discrimination": 8,
        "optim.steps": 4,
    },
}
# Feature matching's loss is a squared difference of means (cancellation), and Adam's first steps divide each
# gradient by its size (g / (|g| + 1e-8)): a few generator weights with gradients near 1e-8 move by 1.1e-5 more or
# less (measured; with per-rank means instead of all-reduced ones they move by 1.5e-3).
ABSOLUTE_TOLERANCE = {"feature-matching": 3e-5}
PER_RANK_STATISTICS = {"minibatch-stddev"}  # the runs whose one-process reference computes them per rank's rows
EVAL_SAMPLES = 151  # > the MNIST classifier's 128 features (a full-rank covariance), odd: the shares differ


def _evaluations(cache_name: str) -> dict:
    """The shipped MNIST DCGAN scored by the GeneratorEvaluator: every metric of the experiment runner on
    MNIST-classifier features of a reference whose features are extracted (in shares under a process group), FID
    against statistics computed from a named source (the cache written by rank 0 only), and real images scored."""
    generator = load_pretrained("mnist-dcgan")  # a trained one: every metric is far from its degenerate value
    real = load_embedded_mnist("test").images[:143]
    every = GeneratorEvaluator(
        ["is", "is_std", "fid", "kid", "precision", "recall"],
        real,
        extractor="mnist",
        n_samples=EVAL_SAMPLES,
        seed=4,
        batch_size=16,
        is_splits=3,
        kid_subset=50,
        kid_subsets=5,
    )
    named = as_image_source(real[:101], what="reference")
    named.identity = f"test-distributed:{cache_name}"
    fid_only = GeneratorEvaluator(["fid"], named, extractor="mnist", n_samples=EVAL_SAMPLES, seed=5, batch_size=32)
    return {"every": every(generator), "fid_only": fid_only(generator), "real": every.score_images(real[50:])}


def models_without_batch_norm(settings: dict):
    """The MLP generator (no batch norm) with the DCGAN discriminator of `settings` (layer norm)."""
    discriminator_only = ("d_norm", "minibatch_stddev", "minibatch_discrimination")  # the MLP pair takes none
    mlp = {k: v for k, v in settings.items() if k not in discriminator_only}
    generator, _ = nn_models.models_from_config({**mlp, "arch": "mlp", "width": 32})
    _, discriminator = nn_models.models_from_config(settings)
    return generator, discriminator


def _config(name: str) -> TrainConfig:
    return TrainConfig.from_dict({**COMMON, **RUNS[name]})


def _digits():
    return load_embedded_mnist("train").subset(64)


def _fid_images() -> tuple[torch.Tensor, torch.Tensor]:
    """37 fake-like and 29 real-like images (odd counts: the shares of the two ranks differ)."""
    gen = torch.Generator().manual_seed(5)
    return torch.rand(37, 3, 16, 16, generator=gen) * 2 - 1, torch.rand(29, 3, 16, 16, generator=gen) * 1.6 - 0.7


def _parameters(trainer: Trainer) -> dict:
    modules = {"generator": trainer.generator, "discriminator": trainer.discriminator}
    modules["evaluation generator"] = trainer.generator_for_eval()  # the EMA copy where the run keeps one
    return {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in modules.items()}


def _join(rank: int, port: int) -> None:
    """The environment torchrun gives a rank, and the test's models."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    trainer_module.models_from_config = models_without_batch_norm
    plot_curve = FIDTracker.plot_curve

    def counted(self, path=None, ax=None):  # the FID curves this rank draws (rank 0 alone should)
        PLOTTED.append(path)
        return plot_curve(self, path, ax)

    FIDTracker.plot_curve = counted


PLOTTED: list = []  # in a worker: the paths its FID tracker drew curves to

KILLED_AT = 8  # rank 1 dies after this step; the last checkpoint is step 6's


def _dying_worker(rank: int, port: int, out_dir: str) -> None:
    """The default run, in which rank 1 dies abruptly (no exception, no cleanup) after step KILLED_AT."""
    _join(rank, port)

    def die(ctx, metrics):
        if rank == 1 and ctx.step == KILLED_AT:
            os._exit(3)

    Trainer(_config("non-saturating"), out_dir, data=_digits(), progress=False, callbacks=[die]).train()


def _worker(rank: int, port: int, out_dir: str, killed_dir: str) -> None:
    """One rank of the job: what torchrun would start, with its environment."""
    _join(rank, port)
    results = {}
    for name in RUNS:
        trainer = Trainer(_config(name), os.path.join(out_dir, name), data=_digits(), progress=False).train()
        results[name] = {**_parameters(trainer), "history": trainer.history, "world": trainer.speed["world_size"]}
    results["plotted"] = list(PLOTTED)
    # The run a dead rank stopped, resumed by both ranks from its last checkpoint.
    results["resumed"] = _parameters(Trainer.resume(killed_dir, data=_digits(), progress=False).train())
    fake, real = _fid_images()
    fake_features, real_features = (
        sharded_features(x, "pixels", progress=False, value_range=(-1, 1)) for x in (fake, real)
    )
    results["features"] = (fake_features.features, real_features.features)
    results["fid"] = float(fid(fake_features, real_features))
    results["evaluations"] = _evaluations(cache_name=out_dir)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """The folder of a distributed run that stopped when rank 1 died, and how the job ended."""
    out_dir = tmp_path_factory.mktemp("killed")
    with pytest.raises(mp.ProcessExitedException) as ended:
        mp.spawn(_dying_worker, args=(_free_port(), str(out_dir)), nprocs=WORLD, join=True)
    shutil.copytree(out_dir, out_dir.with_name(out_dir.name + "_copy"))  # the job resumes (and rewrites) out_dir
    return out_dir, ended.value


@pytest.fixture(scope="module")
def job(tmp_path_factory, killed):
    """The two ranks' results (one spawn for the module, after the killed run's)."""
    out_dir = tmp_path_factory.mktemp("ddp")
    state = torch.load(killed[0] / "checkpoints" / "last.pt", weights_only=True)  # before the resume writes
    assert state["step"] == 6, "the last checkpoint before rank 1 died"
    mp.spawn(_worker, args=(_free_port(), str(out_dir), str(killed[0])), nprocs=WORLD, join=True)
    return out_dir, [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@contextlib.contextmanager
def _statistics_per_rank():
    """In one process, minibatch stddev as WORLD ranks compute it: over each rank's rows of every D batch."""
    whole_batch = MinibatchStdDev.forward
    MinibatchStdDev.forward = lambda self, x: torch.cat([whole_batch(self, part) for part in x.chunk(WORLD)])
    try:
        yield
    finally:
        MinibatchStdDev.forward = whole_batch


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same runs in one process at the global batch."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        assert name not in os.environ, f"{name} is set: the single-process reference would join a job"
    out_dir = tmp_path_factory.mktemp("single")
    saved, trainer_module.models_from_config = trainer_module.models_from_config, models_without_batch_norm
    try:
        trainers, runs = {}, {}
        for name in RUNS:
            trainers[name] = Trainer(_config(name), out_dir / name, data=_digits(), progress=False)
            with _statistics_per_rank() if name in PER_RANK_STATISTICS else contextlib.nullcontext():
                runs[name] = _parameters(trainers[name].train())
        return {**runs, "history": {name: trainer.history for name, trainer in trainers.items()}}
    finally:
        trainer_module.models_from_config = saved


@pytest.mark.parametrize("name", list(RUNS))
def test_two_ranks_at_half_batch_match_one_process(job, single, name):
    _, ranks = job
    assert ranks[0][name]["world"] == WORLD
    for part in ("generator", "discriminator", "evaluation generator"):
        for key, reference in single[name][part].items():
            for rank in range(WORLD):
                got = ranks[rank][name][part][key]
                atol = ABSOLUTE_TOLERANCE.get(name, 1e-5)
                assert torch.allclose(got, reference, atol=atol, rtol=1e-4), (name, part, key, rank)
            assert torch.equal(ranks[0][name][part][key], ranks[1][name][part][key]), "ranks disagree"
    assert ranks[0][name]["history"] == ranks[1][name]["history"]  # log rows averaged over the ranks


def test_a_dead_rank_ends_the_job_and_a_resume_gives_the_uninterrupted_run(killed, job):
    _, ended = killed
    assert ended.error_index == 1 and ended.exit_code == 3  # the job stops, naming the rank that died
    assert "process 1 terminated with exit code 3" in str(ended)
    _, ranks = job
    for rank in range(WORLD):
        for part in ("generator", "discriminator"):
            for key, value in ranks[rank]["non-saturating"][part].items():
                assert torch.equal(ranks[rank]["resumed"][part][key], value), (rank, part, key)


def test_a_two_rank_checkpoint_resumes_in_one_process(killed, single, monkeypatch, capsys):
    """The data order and the noise are those of the global batch, so one process continuing the two ranks' run
    reaches the single-process run's parameters (up to float rounding), and says what changed."""
    copy = killed[0].with_name(killed[0].name + "_copy")
    monkeypatch.setattr(trainer_module, "models_from_config", models_without_batch_norm)
    resumed = _parameters(Trainer.resume(copy, data=_digits(), progress=False).train())
    assert "written at world size 2, resumed at 1" in capsys.readouterr().out
    for part, values in single["non-saturating"].items():
        for key, reference in values.items():
            assert torch.allclose(resumed[part][key], reference, atol=1e-5, rtol=1e-4), (part, key)


def test_rank_zero_alone_writes_and_the_checkpoint_holds_every_rank(job):
    out_dir, _ = job
    run = out_dir / "non-saturating"
    assert (run / "log.jsonl").is_file() and (run / "samples.png").is_file()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["world_size"] == WORLD and len(state["rank_rng"]) == WORLD and state["step"] == STEPS
    leftovers = [p.name for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_sharded_features_and_fid_equal_one_process(job):
    _, ranks = job
    fake, real = _fid_images()
    # No process group in this process: sharded_features is plain extraction here.
    single_fake = sharded_features(fake, "pixels", progress=False, value_range=(-1, 1))
    single_real = sharded_features(real, "pixels", progress=False, value_range=(-1, 1))
    for rank in range(WORLD):
        got_fake, got_real = ranks[rank]["features"]
        assert torch.equal(got_fake, single_fake.features) and torch.equal(got_real, single_real.features)
    reference = float(fid(single_fake, single_real))
    assert reference > 0
    for rank in range(WORLD):
        assert abs(ranks[rank]["fid"] - reference) <= 1e-6 * reference


def test_settings_that_cannot_work_are_refused():
    two = Distributed(rank=0, world_size=2)
    with pytest.raises(ConfigError, match="divisible by the world size 2"):
        two.check(TrainConfig.from_dict({"optim.batch_size": 15}))
    with pytest.raises(ConfigError, match="speed.compile on"):
        two.check(TrainConfig.from_dict({"speed.compile": "on"}))
    generator, discriminator = nn_models.models_from_config(
        {"arch": "dcgan", "latent_dim": 8, "image_size": 28, "channels": 1, "width": 8, "d_norm": "none"}
    )
    with pytest.raises(ConfigError, match="generator has batch norm.*SyncBatchNorm only on CUDA"):
        two.prepare_models(generator, discriminator, torch.device("cpu"))
    assert Distributed().local_batch_size(15) == 15


def test_the_sharded_evaluator_equals_one_process(job):
    """GeneratorEvaluator under a process group: each rank generates and extracts its share, the features are
    gathered, and every metric is the one-process value (the same latents, the same features up to rounding)."""
    from course_lib.metrics.features import get_extractor
    from course_lib.metrics.stats_cache import Statistics, cache_dir, cache_path

    _, ranks = job
    single = _evaluations(cache_name="one process")
    for part, values in single.items():
        for name, reference in values.items():
            assert reference is not None and math.isfinite(reference), (part, name)
            for rank in range(WORLD):
                got = ranks[rank]["evaluations"][part][name]
                assert got == pytest.approx(reference, rel=1e-6, abs=1e-12), (part, name, rank)
        assert ranks[0]["evaluations"][part] == ranks[1]["evaluations"][part], "ranks disagree"
    # The named reference's statistics were computed in shares and cached once (rank 0), as one process's.
    written = [p for p in (cache_dir() / "fid_stats").glob("*.npz")]
    mnist = get_extractor("mnist", "cpu")
    ours = cache_path(f"test-distributed:{job[0]}", mnist.identity)
    assert ours in written
    alone = cache_path("test-distributed:one process", mnist.identity)
    assert Statistics.load(ours).mu == pytest.approx(Statistics.load(alone).mu, rel=1e-6, abs=1e-9)


def test_the_fid_tracker_under_ddp_logs_one_value_and_rank_zero_draws(job, single):
    out_dir, ranks = job
    tracked = [[(row["step"], row["fid"]) for row in ranks[r]["wgan-gp"]["history"] if "fid" in row] for r in (0, 1)]
    assert [step for step, _ in tracked[0]] == [4, 8] and tracked[0] == tracked[1]
    alone = [(row["step"], row["fid"]) for row in single["history"]["wgan-gp"] if "fid" in row]
    # The generators agree to ~1e-5 (test above), so the FIDs do to about as much.
    assert [v for _, v in tracked[0]] == pytest.approx([v for _, v in alone], rel=1e-3)
    assert ranks[1]["plotted"] == [] and len(ranks[0]["plotted"]) == 2
    assert (out_dir / "wgan-gp" / "fid.png").is_file() and (out_dir / "wgan-gp" / "checkpoints" / "best.pt").is_file()


# ------------------------------------------------------------------------------------------------ multi-node
DOCS = Path(__file__).parents[1] / "docs" / "distributed.md"
TINY_EXPERIMENT = {  # an MLP pair (no batch norm: it trains on the CPU at world size 2), a few steps
    "name": "tiny-ddp",
    "base": {
        "data": {"dataset": "mnist", "limit": 128},
        "model": {"arch": "mlp", "width": 8, "latent_dim": 8},
        "optim": {"batch_size": 16, "steps": 2},
        "run": {"device": "cpu", "log_every": 1, "sample_every": 100, "checkpoint_every": 2},
    },
    "seeds": [0],
    "eval": {"every": 0, "n_samples": 64, "n_reference": 100, "extractor": "mnist", "kid_subset": 32},
    "variants": [{"name": "alone"}, {"name": "ddp", "preset": "ema"}],
}


def _documented(block_start: str) -> str:
    """The fenced code block of docs/distributed.md that starts with `block_start`."""
    blocks = DOCS.read_text().split("```bash\n")[1:]
    found = [b.split("```")[0] for b in blocks if b.startswith(block_start)]
    assert len(found) == 1, f"one block starting {block_start!r} in {DOCS}"
    return found[0]


def _command_line(text: str, start: str) -> list[str]:
    """The shell command of `text` that starts with `start` (continuation lines joined), as argv."""
    import shlex

    joined = text.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, (start, text)
    return shlex.split(lines[0])


def _replace_option(argv: list[str], option: str, value: str) -> list[str]:
    assert option in argv, (option, argv)
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


def test_the_documented_two_machine_command_runs_an_experiment(tmp_path):
    """docs/distributed.md's two-machine torchrun line, run as two one-process "nodes" meeting in a c10d
    rendezvous on 127.0.0.1: `course-lib experiment` under torchrun keeps a run finished in one process, trains
    the other at world size 2, evaluates it in shards (the one-process numbers) and writes once."""
    import subprocess
    import sys

    import yaml

    from course_lib.experiment import load_experiment, run_experiment
    from course_lib.experiment.runner import EVAL_KEYS, make_evaluator
    from course_lib.training.checkpoint import load_generator

    config_path, out = tmp_path / "tiny.yaml", tmp_path / "study"
    config_path.write_text(yaml.safe_dump(TINY_EXPERIMENT))
    run_experiment(config_path, out, progress=False, only=["alone"])  # one process, before the job
    alone = (out / "runs" / "alone" / "seed0" / "result.json").read_bytes()

    argv = _command_line(_documented("torchrun --nnodes 2"), "torchrun")
    assert argv[argv.index("--rdzv-backend") + 1] == "c10d" and argv[argv.index("--nnodes") + 1] == "2"
    port = _free_port()
    argv = _replace_option(argv, "--nproc-per-node", "1")
    argv = _replace_option(argv, "--rdzv-endpoint", f"127.0.0.1:{port}")
    argv = _replace_option(argv, "--rdzv-id", f"test-{port}")
    argv = _replace_option(argv, "--out", str(out))
    i = argv.index("experiment")
    argv = [sys.executable, "-m", "torch.distributed.run", *argv[1 : i + 1], str(config_path), *argv[i + 2 :]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    env.pop("WORLD_SIZE", None)
    nodes = [
        subprocess.Popen(
            _replace_option(argv, "--node-rank", str(rank)) + ["--quiet"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs
    assert "wrote " in logs[0] and "# Experiment" not in logs[1] and "[2/2]" not in logs[1], logs

    report = json.loads((out / "report.json").read_text())
    assert not report.get("partial") and [row["variant"] for row in report["variants"]] == ["alone", "ddp"]
    assert (out / "runs" / "alone" / "seed0" / "result.json").read_bytes() == alone, "a finished run is kept"
    run_dir = out / "runs" / "ddp" / "seed0"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2 and result["steps"] == 2
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["world_size"] == 2
    assert not [p for p in out.rglob("*.tmp")]
    # The numbers the job recorded are one process's evaluation of the generator it saved.
    config = load_experiment(config_path)
    evaluator = make_evaluator(config.eval, config.base, device="cpu")
    direct = evaluator(load_generator(run_dir / "checkpoints" / "last.pt"))
    for key in EVAL_KEYS:
        assert result["final"][key] == pytest.approx(direct[key], rel=1e-6, abs=1e-12), key


def test_the_documented_sbatch_script(tmp_path):
    """docs/distributed.md's sbatch script: valid bash, and run with SLURM's variables set by hand and stand-ins
    for scontrol and srun (which records its 2 tasks' command lines), each task gets the two-machine torchrun
    line of the test above with SLURM's values."""
    import shlex
    import subprocess

    script = _documented("#!/bin/bash")
    (tmp_path / "job.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "job.sh")], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\n[ "$1 $2" = "show hostnames" ] && echo localhost\n')
    (bin_dir / "srun").write_text(
        "#!/bin/bash\n"
        'for ((node = 0; node < SLURM_NNODES; node++)); do SLURM_NODEID=$node printf "%q " "$@" >> "$TASKS"; '
        'echo >> "$TASKS"; done\n'
    )
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_NODELIST": "node[01-02]",
        "SLURM_NNODES": "2",
        "SLURM_JOB_ID": "4242",
        "TASKS": str(tmp_path / "tasks.txt"),
    }
    subprocess.run(["bash", str(tmp_path / "job.sh")], env=env, check=True, cwd=tmp_path)
    tasks = [shlex.split(line) for line in (tmp_path / "tasks.txt").read_text().splitlines()]
    assert len(tasks) == 2 and tasks[0] == tasks[1]
    documented = _command_line(_documented("torchrun --nnodes 2"), "torchrun")
    without_node_rank = documented[:1] + [
        a for i, a in enumerate(documented[1:], 1) if "--node-rank" not in (a, documented[i - 1])
    ]
    expected = _replace_option(without_node_rank, "--rdzv-endpoint", "localhost:29500")
    expected = _replace_option(expected, "--rdzv-id", "4242")
    assert tasks[0] == expected


def test_minibatch_stddev_per_rank_is_not_the_whole_batch_statistic():
    """What makes the minibatch-stddev comparison above mean something: the statistic over each rank's rows (the
    one-process reference's) differs from the one over the whole batch."""
    x = torch.randn(GLOBAL_BATCH, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with _statistics_per_rank():
        per_rank = MinibatchStdDev()(x)
    whole = MinibatchStdDev()(x)
    assert torch.equal(per_rank[:, :3], whole[:, :3]) and (per_rank[:, 3] - whole[:, 3]).abs().max() > 1e-3
