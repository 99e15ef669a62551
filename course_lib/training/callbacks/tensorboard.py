"""TensorBoard logging beside log.jsonl (issue 30): every log row's scalars and the progress grid over time.

    callbacks: [{name: tensorboard}]        # or on the command line: --set callbacks.tensorboard.every=250

Each log row (losses, D(x) as d_real, D(G(z)) as d_fake, the penalties and whatever callbacks log, such as
the FID tracker's fid) becomes one scalar per name at its step, and every `every` steps (default: the run's
run.sample_every) the progress grid (samples.png's images) is added as an image, so TensorBoard shows the
samples over time. Files go to `<run folder>/tensorboard` (or `log_dir`); in a distributed run only rank 0
writes, and a run without a folder writes nothing. Needs the `tensorboard` package (`pip install tensorboard`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from course_lib.core.plots import image_grid
from course_lib.training.callbacks.base import Callback, register_callback


@register_callback("tensorboard")
class TensorBoardLogger(Callback):
    """See the module docstring."""

    def __init__(self, every: int | None = None, log_dir: str | None = None):
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be a positive number of steps, got {every!r}")
        if importlib.util.find_spec("tensorboard") is None:
            raise ValueError("it needs the tensorboard package: pip install tensorboard")
        self.every, self.log_dir, self.writer = every, log_dir, None

    def setup(self, ctx) -> None:
        if ctx.rank != 0 or (ctx.out_dir is None and self.log_dir is None):
            return
        # torch's writer imports tensorboard, an optional dependency: only runs that log to it load it.
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(self.log_dir) if self.log_dir else Path(ctx.out_dir) / "tensorboard"))

    def on_log(self, ctx, row: dict) -> None:
        if self.writer is None:
            return
        for name, value in row.items():
            if name != "step":
                self.writer.add_scalar(name, value, row["step"])
        self.writer.flush()

    def on_step_end(self, ctx, metrics) -> None:
        every = self.every or ctx.config.run.sample_every
        if self.writer is not None and ctx.step % every == 0:
            self._add_grid(ctx)

    def on_train_end(self, ctx) -> None:
        every = self.every or ctx.config.run.sample_every
        if self.writer is not None and ctx.step % every:  # the last step, when it was not a grid step already
            self._add_grid(ctx)

    def _add_grid(self, ctx) -> None:
        images, per_row = ctx.task.sample_grid(ctx)
        self.writer.add_image("samples", image_grid(images, per_row), ctx.step, dataformats="HWC")
        self.writer.flush()
