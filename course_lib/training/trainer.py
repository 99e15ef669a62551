"""The GAN trainer: Goodfellow et al.'s Algorithm 1, with the bookkeeping a real run needs.

One training step (one generator update) is:

    for k discriminator steps:                        (k = config.d_steps)
        x <- next real minibatch;  z <- N(0, I)
        update D by descending  the sum of its loss terms' contributions
    update G by descending  the sum of its loss terms' contributions

What G is asked to do is the run's task (`course_lib.training.tasks`): draw images from noise z
(and a class), or translate images (pix2pix: x -> y from pairs; CycleGAN: A <-> B, unpaired), where
"z" is the image to translate. The task draws the batch and G's inputs; the step is the same.

The step knows no loss by name and no trick: every objective and regulariser (the adversarial loss,
gradient penalties, weight clipping, feature matching, historical averaging, ACGAN's and InfoGAN's
auxiliary losses, instance noise) is a loss term (`course_lib.training.terms`), built from the
config by `build_terms`. As in the PyTorch DCGAN tutorial, the generator step reuses the fakes of
the last discriminator step (one generator forward pass instead of two).

Around the step the trainer keeps: a log of losses and D outputs (log.jsonl, losses.png), a grid
of samples from fixed noise (samples/), atomic checkpoints with everything needed to resume to
exactly the same result (checkpoints/last.pt), and a check that stops a diverging run while its
last good checkpoint is still on disk. Everything else that happens during a run (an EMA of the
generator, FID tracking, the diversity controller) is a callback (`course_lib.training.callbacks`)
with a lifecycle: setup, on_train_start, on_step_end, on_train_end, and its own checkpointed state.
The trainer times every callback (`callback_seconds`).

Under torchrun (world size > 1) the same step runs data-parallel: `course_lib.training.distributed` joins the
process group, wraps the training forwards in DistributedDataParallel, gives each rank its rows of every global
batch, and the trainer lets rank 0 alone write (see that module for the rules).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.core.errors import CheckpointError, ConfigError, TrainingDiverged
from course_lib.core.io import write_json_atomic, write_text_atomic
from course_lib.core.plots import plot_training_log, save_image_grid
from course_lib.core.registry import canonical
from course_lib.data import ImageData
from course_lib.data.translation import PairedImages, UnpairedImages
from course_lib.nn.models import CONDITIONINGS, models_from_config
from course_lib.training import checkpoint as ckpt_io
from course_lib.training import distributed, speed
from course_lib.training.callbacks import Callback, as_callback, callbacks_from_config
from course_lib.training.config import TrainConfig, model_settings
from course_lib.training.context import StepContext
from course_lib.training.tasks import task_for
from course_lib.training.terms import StepBatch, add_contributions, build_terms


def _in_context(name: str, doc: str = "") -> property:
    """A trainer attribute that is the context's (one copy of the run's state)."""

    def get(self):
        return getattr(self.ctx, name)

    def set_(self, value):
        setattr(self.ctx, name, value)

    return property(get, set_, doc=doc or f"the run's {name} (trainer.ctx.{name})")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [list(s) if isinstance(s, tuple) else s for s in random.getstate()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# The short names Trainer.resume accepts for its overrides (the common flags of `course-lib train --resume`).
RESUME_SHORT_NAMES = {"steps": "optim.steps", "device": "run.device"}


def resume_overrides(overrides: dict) -> dict:
    """Trainer.resume's overrides as dotted paths: steps -> optim.steps, device -> run.device."""
    out = {}
    for key, value in overrides.items():
        if "." not in key and key not in RESUME_SHORT_NAMES:
            raise ConfigError(
                f"resume override {key!r}: give a dotted path such as optim.steps, or one of {', '.join(RESUME_SHORT_NAMES)}"
            )
        out[RESUME_SHORT_NAMES.get(key, key)] = value
    return out


class Trainer:
    """Trains a generator/discriminator pair on an image dataset. See the module docstring.

    data: the images to train on instead of the config's dataset: ImageData (task 'generation'),
    PairedImages (pix2pix) or UnpairedImages (cyclegan) from course_lib.data.translation.
    callbacks: Callback objects (or functions f(trainer, metrics), called after every step) added
    after the ones the config lists.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | os.PathLike | None = None,
        data: ImageData | PairedImages | UnpairedImages | None = None,
        callbacks: list | tuple = (),
        progress: bool = True,
    ):
        self.config = config
        # torchrun's process group (course_lib.training.distributed); world size 1: every call below is the identity.
        self.dist = distributed.from_environment(config.run.device)
        self.dist.check(config)
        self.progress = progress and self.dist.is_main
        device = self.dist.device(config.run.device)
        seed_everything(config.run.seed)  # the same on every rank: the models start identical, as in one process

        task = task_for(config)  # generation, pix2pix or cyclegan: what G is asked to do (training/tasks.py)
        # What tasks, terms and callbacks see of the run (training/context.py); the trainer's own state lives there.
        ctx = self.ctx = StepContext(
            config=config, device=device, task=task, rank=self.dist.rank, world_size=self.dist.world_size
        )
        ctx.out_dir = Path(out_dir) if out_dir is not None else None
        ctx.data = data if data is not None else task.load_data(config)
        ctx.image_size, ctx.channels = ctx.data.image_size, ctx.data.channels
        ctx.conditioning = CONDITIONINGS[config.model.conditional]
        task.check(ctx)
        ctx.generator, ctx.discriminator = self.dist.prepare_models(
            *(m.to(device) for m in models_from_config(model_settings(config, ctx.image_size, ctx.channels))), device
        )
        speed.configure_cuda(device)
        ctx.channels_last = speed.resolve(config.speed.channels_last, device, "channels_last")
        if ctx.channels_last:
            speed.to_channels_last(ctx.generator, ctx.discriminator)
        ctx.opt_g = self._optimizer(ctx.generator, config.optim.lr_g)
        ctx.opt_d = self._optimizer(ctx.discriminator, config.optim.lr_d)
        ctx.loader, on_device = task.make_loader(ctx)
        ctx.loader = self.dist.shard_loader(ctx.loader)  # this rank's rows of every (global) batch
        ctx.terms = self.terms = build_terms(config)
        ctx.callbacks = self.callbacks = callbacks_from_config(config) + [as_callback(c) for c in callbacks]
        ctx.log, ctx.save_checkpoint, ctx.seconds_of = self.log_extra, self.save_checkpoint, self.seconds_of
        for part in (*self.terms, *self.callbacks):
            part.setup(ctx)
        if self.dist.enabled:  # from here on (dropout, style mixing) each rank draws its own numbers
            seed_everything(self.dist.rank_seed(config.run.seed))
        self.callback_seconds = {self._callback_key(i): 0.0 for i in range(len(self.callbacks))}

        # Noise comes from the run's own generator, so evaluation code that draws random numbers
        # elsewhere never shifts the training stream.
        ctx.noise_rng = torch.Generator(device=device).manual_seed(config.run.seed + 1)
        ctx.latent_dim = getattr(ctx.generator, "latent_dim", None)  # InfoGAN: noise + code; translation: none
        # The progress grids' inputs: fixed latents (and labels), or fixed images to translate.
        ctx.fixed_noise, ctx.fixed_labels = task.fixed_inputs(ctx)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(device.type) if self.amp_dtype == torch.float16 else None
        self.g_train, self.d_train = self._compiled_forwards()
        ctx.forward_g, ctx.forward_d = self.g_train, self.d_train
        self.speed = {
            "device": str(device),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
            "channels_last": ctx.channels_last,
            "optimizer": self.optimizer_impl,
            "data_on_device": on_device,
            "compile_g": self.g_train.reason,
            "compile_d": self.d_train.reason,
            "world_size": self.dist.world_size,
        }

        self.history: list[dict] = []  # one row per log interval
        self.elapsed = 0.0  # seconds of training, summed over resumed sessions
        self._pending: list[dict[str, torch.Tensor]] = []
        self._extra: dict[str, float] = {}

    # The run's state, kept in the context (read by tasks, terms and callbacks); here for the trainer's users.
    step = _in_context("step", "generator updates done")
    batch_index = _in_context("batch_index", "real minibatches consumed")
    generator = _in_context("generator")
    discriminator = _in_context("discriminator")
    opt_g = _in_context("opt_g")
    opt_d = _in_context("opt_d")
    noise_rng = _in_context("noise_rng")
    device = _in_context("device")
    data = _in_context("data")
    loader = _in_context("loader")
    task = _in_context("task")
    image_size = _in_context("image_size")
    channels = _in_context("channels")
    latent_dim = _in_context("latent_dim")
    channels_last = _in_context("channels_last")
    conditioning = _in_context("conditioning")
    fixed_noise = _in_context("fixed_noise")
    fixed_labels = _in_context("fixed_labels")
    out_dir = _in_context("out_dir", "the run folder (None: nothing is written)")

    def _callback_key(self, index: int) -> str:
        """The callback's name, numbered when several callbacks share it (for callback_seconds)."""
        name = self.callbacks[index].name
        same = [i for i, c in enumerate(self.callbacks) if c.name == name]
        return name if len(same) == 1 else f"{name}#{same.index(index) + 1}"

    def seconds_of(self, callback: Callback) -> float:
        """Wall seconds the trainer has spent in `callback`'s hooks, over all sessions of the run."""
        index = next(i for i, c in enumerate(self.callbacks) if c is callback)
        return self.callback_seconds[self._callback_key(index)]

    def term(self, name: str):
        """The loss term called `name` (e.g. 'instance-noise'), or None when the run has none."""
        return self.ctx.term(name)

    def _optimizer(self, module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        optim = self.config.optim
        optimizer, self.optimizer_impl = speed.make_optimizer(
            module.parameters(),
            optim.optimizer,
            lr,
            (optim.beta1, optim.beta2),
            self.device,
            self.config.speed.optimizer_impl,
        )
        return optimizer

    def _compiled_forwards(self) -> tuple[speed.CompileResult, speed.CompileResult]:
        """G's forward and D's forward_all for training: torch.compile'd where it helps (see course_lib.training.speed).

        Each is probed on a copy (forward and backward, under autocast) with inputs from a private
        generator, so neither the models nor the training noise stream are touched. The modules
        themselves stay eager: sampling, evaluation and checkpoints use them as before.
        """
        fast, n = self.config.speed, self.config.optim.batch_size
        if self.dist.enabled:  # DistributedDataParallel around the eager modules (the config refuses compile 'on')
            reason = f"off: DistributedDataParallel, world size {self.dist.world_size}"
            g = speed.CompileResult(self.dist.wrap(self.generator), False, reason)
            return g, speed.CompileResult(self.dist.wrap(self.discriminator, "forward_all"), False, reason)
        probe = fast.compile != "off" and (fast.compile == "on" or self.device.type == "cuda")
        g_example = d_example = None
        if probe:
            g_example, d_example = self.task.compile_examples(
                self.ctx, torch.Generator(device=self.device).manual_seed(0), n
            )
        common = {"choice": fast.compile, "device": self.device, "mode": fast.compile_mode, "context": self.autocast}
        g = speed.maybe_compile(self.generator, example=g_example, **common)
        d = speed.maybe_compile(self.discriminator, method="forward_all", example=d_example, **common)
        return g, d

    # ------------------------------------------------------------------------------- the step
    def _amp_dtype(self):
        choice = self.config.speed.amp
        if choice == "off" or (choice == "auto" and self.device.type != "cuda"):
            return None
        if choice == "fp16":
            return torch.float16
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16 if choice == "auto" else None
        return torch.bfloat16

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def sample_noise(self, n: int) -> torch.Tensor:
        return self.ctx.sample_noise(n)

    def sample_labels(self, n: int) -> torch.Tensor | None:
        """Uniform class labels for the fakes of a label-conditional GAN (None otherwise)."""
        return self.ctx.sample_labels(n)

    def discriminator_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """What D takes beside the image: the labels (cGAN), the source image (pix2pix), else None."""
        return self.ctx.condition(labels)

    def discriminator_input(self, images: torch.Tensor) -> torch.Tensor:
        """The images as D sees them, after every term's input transform (e.g. instance noise)."""
        ctx = self.ctx
        for term in self.terms:
            images = term.discriminator_input(images, ctx)
        return images

    def _loss(self, batch: StepBatch, part: str) -> torch.Tensor:
        """The sum of every term's contribution to one player's loss ('discriminator' or 'generator'),
        each computed under autocast unless the term needs full precision."""
        total, ctx = None, self.ctx
        for term in self.terms:
            with contextlib.nullcontext() if term.full_precision else self.autocast():
                total = add_contributions(total, getattr(term, f"{part}_loss")(batch, ctx))
        return total

    def _backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator update preceded by `d_steps` discriminator updates. Returns detached metrics."""
        k, ctx, task = self.config.optim.d_steps, self.ctx, self.ctx.task
        for i in range(k):
            # real images and G's inputs (noise and labels, or the images to translate): see training/tasks.py
            draw = task.draw(ctx)
            with self.autocast():
                if i < k - 1:
                    with torch.no_grad():
                        fake = self.g_train(*draw.generator_inputs)
                else:  # the last fakes keep their graph: the generator step reuses them
                    fake = self.g_train(*draw.generator_inputs)
                out_real = self.d_train(
                    self.discriminator_input(draw.real), self.discriminator_labels(draw.real_labels)
                )
                out_fake = self.d_train(
                    self.discriminator_input(fake.detach()), self.discriminator_labels(draw.fake_labels)
                )
            batch = StepBatch(draw.real, draw.real_labels, fake, draw.fake_labels, draw.z, out_real, out_fake)
            loss_d = self._loss(batch, "discriminator")
            self._backward_step(loss_d, self.opt_d)
            for term in self.terms:
                term.after_discriminator_step(ctx)

        with self.autocast():
            batch.out_g = self.d_train(self.discriminator_input(fake), self.discriminator_labels(batch.fake_labels))
        loss_g = self._loss(batch, "generator")
        self._backward_step(loss_g, self.opt_g)
        for term in self.terms:
            term.after_generator_step(ctx)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **batch.metrics}

    def log_extra(self, values: dict[str, float]) -> None:
        """Add scalar values (e.g. a callback's FID) to the next log row."""
        self._extra.update({k: float(v) for k, v in values.items()})

    # ------------------------------------------------------------------------------ the loop
    def _call(self, hook: str, *args) -> None:
        """Call one lifecycle hook on every callback, in order, timing each."""
        for i, callback in enumerate(self.callbacks):
            started = time.perf_counter()
            getattr(callback, hook)(self.ctx, *args)
            self.callback_seconds[self._callback_key(i)] += time.perf_counter() - started

    def train(self, steps: int | None = None) -> Trainer:
        """Train until `steps` generator updates in total (default: config.steps).

        Callbacks get on_train_start first. on_train_end marks the end of the run, not of the call: it
        comes after the last step when this call reaches config.steps or goes beyond it (before that
        step's log row, samples and checkpoint are written). A call that stops short of config.steps
        (an experiment evaluating at checkpoints, `train(steps=500)` on a 1,000-step config) is a pause:
        the next train() call starts again with on_train_start.
        """
        from tqdm.auto import tqdm

        target = self.config.optim.steps if steps is None else steps
        run = self.config.run
        ends_the_run = target >= self.config.optim.steps
        writes = self.out_dir is not None and self.dist.is_main  # rank 0 writes the run's files
        if writes:
            write_json_atomic(self.out_dir / "config.json", self.config.to_dict())
        bar = tqdm(
            total=target, initial=self.step, desc="training", unit="step", disable=not self.progress, dynamic_ncols=True
        )
        self.generator.train()
        self.discriminator.train()
        started = time.perf_counter()
        try:
            if self.step < target:
                self._call("on_train_start")
            while self.step < target:
                metrics = self.train_step()
                self.step += 1
                self._pending.append(metrics)
                self._call("on_step_end", metrics)
                last = self.step == target
                if last and ends_the_run:
                    self._call("on_train_end")
                if self.step % run.log_every == 0 or last or self.step % run.checkpoint_every == 0:
                    row = self._flush_log()
                    bar.set_postfix(
                        loss_d=f"{row['loss_d']:.3f}",
                        loss_g=f"{row['loss_g']:.3f}",
                        d_real=f"{row['d_real']:.2f}",
                        d_fake=f"{row['d_fake']:.2f}",
                        refresh=False,
                    )
                bar.update()
                if self.out_dir is not None:
                    if writes and (self.step % run.sample_every == 0 or last):
                        self.save_samples()
                    if self.step % run.checkpoint_every == 0 or last:
                        self.elapsed += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save_checkpoint()
        finally:
            bar.close()
            self.elapsed += time.perf_counter() - started
        if writes:
            plot_training_log(self.history, self.out_dir / "losses.png")
        return self

    def _flush_log(self) -> dict:
        """Average the pending per-step metrics into one log row (one host sync per interval).

        Also the divergence check: a non-finite loss stops training before anything is saved.
        """
        stacked = {k: torch.stack([m[k] for m in self._pending]).float() for k in self._pending[0]}
        stacked = self.dist.mean(stacked)  # the job's averages, so every rank takes the same decisions below
        self._pending.clear()
        values = {k: v.cpu() for k, v in stacked.items()}
        if not all(torch.isfinite(v).all() for v in values.values()):
            bad = ", ".join(k for k, v in values.items() if not torch.isfinite(v).all())
            raise TrainingDiverged(
                f"training diverged at step {self.step}: {bad} became NaN or infinite. "
                f"{self._last_good_message()} Try a lower learning rate, another loss, or another seed."
            )
        row = {"step": self.step, **{k: float(v.mean()) for k, v in values.items()}, **self._extra}
        self._extra = {}
        self.history.append(row)
        if self.out_dir is not None and self.dist.is_main:
            write_text_atomic(self.out_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in self.history))
        self._call("on_log", row)
        return row

    def _last_good_message(self) -> str:
        if self.out_dir is None:
            return "No checkpoints were being written."
        last = self.out_dir / "checkpoints" / "last.pt"
        if last.is_file():
            return f"The last good checkpoint is kept at {last}."
        return "No checkpoint had been written yet."

    # ------------------------------------------------------------------------------- outputs
    def generator_for_eval(self) -> torch.nn.Module:
        """The generator to evaluate and sample from: a callback's (the EMA copy) when one provides it."""
        return self.ctx.generator_for_eval()

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generator outputs in [-1, 1] for latents z (and class labels for conditional models), in eval
        mode (batch-norm running statistics), from the EMA generator when there is one."""
        return self.ctx.generate(z, labels)

    def save_samples(self) -> Path:
        images, per_row = self.task.sample_grid(self.ctx)  # generation: G(fixed noise); translation: inputs and outputs
        save_image_grid(images, self.out_dir / "samples" / f"step_{self.step:07d}.png", per_row)
        return save_image_grid(images, self.out_dir / "samples.png", per_row)

    def state_dict(self) -> dict:
        evaluation = next((i for i, c in enumerate(self.callbacks) if c.evaluation_generator() is not None), None)
        return {
            "format": ckpt_io.FORMAT,
            "config": self.config.replace({"data.image_size": self.image_size}).to_dict(),  # the size it trained at
            "channels": self.channels,
            "data_source": self.data.source,
            "step": self.step,
            "batch_index": self.batch_index,
            "elapsed": self.elapsed,
            "callback_seconds": dict(self.callback_seconds),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "noise_rng": self.noise_rng.get_state(),
            "rng": _rng_state(),
            "world_size": self.dist.world_size,
            "rank_rng": self.dist.gather_objects(_rng_state()) if self.dist.enabled else None,  # every rank's
            "fixed_noise": self.fixed_noise.cpu(),
            "history": self.history,
            "terms": {t.name: t.state_dict() for t in self.terms if t.state_dict() is not None},
            "callbacks": [{"name": c.name, "state": c.state_dict()} for c in self.callbacks],
            "evaluation_generator": evaluation,  # index of the callback whose state["module"] is G to evaluate
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Write checkpoints/last.pt (or `path`) atomically, after checking every parameter is finite.

        In a distributed run every rank calls it (the RNG states are gathered), rank 0 writes, and all wait at a
        barrier until the file is complete."""
        for name, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(
                    f"the {name}'s parameters became NaN or infinite at step {self.step}. "
                    f"{self._last_good_message()} Try a lower learning rate."
                )
        state, path = self.state_dict(), Path(path or self.out_dir / "checkpoints" / "last.pt")
        if self.dist.is_main:
            ckpt_io.save_atomic(state, path)
        self.dist.barrier()
        return path

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            for optimizer in (self.opt_g, self.opt_d):  # this machine's choice, not the writer's
                speed.set_optimizer_impl(optimizer, self.optimizer_impl)
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.noise_rng.set_state(state["noise_rng"].to(self.noise_rng.get_state().device))
            self.fixed_noise = state["fixed_noise"].to(self.device)
            self.step, self.batch_index = state["step"], state["batch_index"]
            self.history, self.elapsed = list(state["history"]), state.get("elapsed", 0.0)
            for key, seconds in state.get("callback_seconds", {}).items():  # time spent before the resume
                if key in self.callback_seconds:
                    self.callback_seconds[key] = float(seconds)
            saved_terms = {canonical(name): value for name, value in state["terms"].items()}  # old: 'instance_noise'
            for term in self.terms:
                if saved_terms.get(canonical(term.name)) is not None:
                    term.load_state_dict(saved_terms[canonical(term.name)])
            # Callbacks get the saved state of the same name, in order; a callback added since starts fresh.
            saved = list(state["callbacks"])
            for callback in self.callbacks:
                match = next((s for s in saved if s["name"] == callback.name), None)
                if match is not None:
                    saved.remove(match)
                    if match["state"] is not None:
                        callback.load_state_dict(match["state"])
            _set_rng_state(self._own_rng_state(state))
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint does not fit this model/trainer: {exc}") from exc

    def _own_rng_state(self, state: dict) -> dict:
        """This rank's RNG state in a checkpoint; at another world size than it was written at, every rank starts
        from rank 0's state reseeded for its rank (the data order and noise stream are unchanged: they are global)."""
        saved_world = state.get("world_size", 1)
        if saved_world == self.dist.world_size:
            return state["rank_rng"][self.dist.rank] if saved_world > 1 else state["rng"]
        if self.dist.is_main:
            print(
                f"note: the checkpoint was written at world size {saved_world}, resumed at {self.dist.world_size}: "
                "the data order and the noise stream continue exactly; torch's global generator (dropout) is "
                "reseeded per rank, and float rounding of the gradient averages differs"
            )
        seed_everything(self.dist.rank_seed(self.config.run.seed) + state["step"])
        return _rng_state()

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike,
        data: ImageData | None = None,
        callbacks: list | tuple = (),
        progress: bool = True,
        **overrides: Any,
    ) -> Trainer:
        """Rebuild a trainer from a run folder (or checkpoint file) and restore its exact state.

        `overrides` may change settings that do not alter the model, as dotted paths or the common short
        names: {"optim.steps": 5000} or steps=5000 to train longer, device="cpu".
        """
        state = ckpt_io.load_checkpoint(path)  # an old flat config is translated there, once
        try:
            config = TrainConfig.from_dict(state["config"]).replace(resume_overrides(overrides))
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {path} holds unusable settings: {exc}") from exc
        run_dir = ckpt_io.resolve(path).parent.parent
        trainer = cls(config, run_dir, data=data, callbacks=callbacks, progress=progress)
        trainer.load_state_dict(state)
        return trainer
