"""Data-parallel training past one device: one process per device, launched by torchrun, on torch.distributed.

    torchrun --nproc-per-node N -m course_lib train --config run.yaml

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/MASTER_PORT) in every process; the trainer
reads them here (`from_environment`) and, at world size > 1, joins the process group (NCCL on CUDA, gloo on the
CPU). Without those variables (or at world size 1) everything below is the identity and a run is exactly the
single-process run it always was.

The rules, at world size W > 1:

- **Batch size is global.** optim.batch_size is the batch of one step summed over all ranks; each rank trains on
  batch_size / W images (refused when W does not divide it). Learning rates therefore mean the same at any W.
- **One data order and one noise stream, sharded.** Every rank builds the same loader at the global batch size
  and keeps its rows of each batch (rank r: rows r*b/W .. (r+1)*b/W); every per-sample random draw of the step
  (latents, class labels, gradient-penalty mixing weights, instance noise: `StepContext.sample_noise`,
  `rand_rows`, `randn_rows`) is drawn for the global batch from the run's noise stream and each rank keeps its
  rows. So W processes at b/W see exactly the images and noise one process sees at b, and (gradients being
  averaged by DistributedDataParallel, the losses being per-sample means) reach the same parameters up to
  float rounding. The models are built from run.seed on every rank (identical, as in one process, and so are the
  copies callbacks and terms take at setup: the EMA, historical averages); after that, torch's global generator
  (dropout, style mixing) is seeded per rank: run.seed + 1,000,003 * rank.
- **G and D are wrapped in DistributedDataParallel** for their training forward passes (`forward_g`,
  `forward_d`); `ctx.generator`/`ctx.discriminator` stay the plain modules (sampling, EMA, checkpoints, and the
  double-backward penalties, whose parameter gradients still go through DDP's all-reduce in the final backward).
- **Batch norm becomes SyncBatchNorm** on CUDA (statistics over the global batch, as one process would compute
  them). PyTorch's SyncBatchNorm runs only on CUDA, so on the CPU a model with batch norm is refused (use
  model.d_norm layer/none and a generator without batch norm, e.g. model.arch mlp).
- **Whole-batch statistics.** The feature-matching term compares batch means of D's features: each rank's
  means are all-reduced into the global batch's (`global_mean`), so it trains as in one process.
  model.minibatch_stddev takes its statistics over each rank's own rows (groups of its b/W samples), as the
  reference multi-GPU implementations do (ProGAN's and StyleGAN2's group size is per GPU); it is not the
  single-process computation at batch b (its groups draw from the global batch), and a run says so once.
  model.minibatch_discrimination compares each sample with the whole global batch: the layer all-gathers every
  rank's projections with their gradient (`nn.layers.MinibatchDiscrimination.gather_ranks`).
- **Refused**, with a one-line error naming the setting: data.task cyclegan (its batch stacks two domains), the progressive callback (it grows the models mid-run), an explicit run.device cuda:N (one
  process per device: use auto or cuda), speed.compile on.
- **Rank 0 writes** logs, samples, plots and checkpoints (atomically, course_lib.core.io); every rank waits at a
  barrier after each checkpoint, so all of them resume from a file that is complete. Log rows are averaged over
  the ranks (one all-reduce per log interval), so the divergence check stops every rank at the same step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.core.runtime import pick_device
from course_lib.nn.layers import MinibatchDiscrimination

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
RANK_SEED_STRIDE = 1_000_003  # rank r seeds torch's global generator with run.seed + r * stride


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}={raw!r} must be an integer (set by torchrun)") from exc


class _ForwardAll(nn.Module):
    """A module whose forward is `module.forward_all`, so DistributedDataParallel can wrap D's training pass.
    It holds `module` itself: parameters and buffers are shared, nothing is copied."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x, labels=None):
        return self.module.forward_all(x, labels)


class ShardedLoader:
    """A batch loader's batches, cut to this rank's rows: the loader runs at the global batch size, so the data
    order is the one a single process sees, whatever the world size."""

    def __init__(self, loader, rank: int, world_size: int):
        self.loader, self.rank, self.world_size = loader, rank, world_size

    def __getattr__(self, name):  # batches_per_epoch, data, flips, ...: the wrapped loader's
        if name == "loader":  # not set yet (copy, pickle): no endless lookup through __getattr__
            raise AttributeError(name)
        return getattr(self.loader, name)

    def batch(self, index: int):
        return tuple(None if x is None else rank_rows(x, self.rank, self.world_size) for x in self.loader.batch(index))


def rank_rows(x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rows rank*n .. (rank+1)*n of a tensor of world_size*n rows."""
    n = x.shape[0] // world_size
    return x[rank * n : (rank + 1) * n]


@dataclass
class Distributed:
    """This process's place in the job (rank of world_size); world_size 1 is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    # ------------------------------------------------------------------------ settings
    def rank_seed(self, seed: int) -> int:
        return seed + RANK_SEED_STRIDE * self.rank

    def local_batch_size(self, global_batch_size: int) -> int:
        if global_batch_size % self.world_size:
            raise ConfigError(
                f"optim.batch_size {global_batch_size} is the global batch and must be divisible by the world size "
                f"{self.world_size} (each rank trains on batch_size / world size)"
            )
        return global_batch_size // self.world_size

    def check(self, config) -> None:
        """Refuse, in one line, the settings that cannot work at this world size (see the module docstring)."""
        if not self.enabled:
            return
        self.local_batch_size(config.optim.batch_size)
        model = config.model
        refused = []
        if config.data.task == "cyclegan":
            refused.append("data.task cyclegan (its batch stacks two domains)")
        if any(spec["name"] == "progressive" for spec in config.callbacks):
            refused.append("callback progressive (it grows the models mid-run)")
        if config.speed.compile == "on":
            refused.append("speed.compile on (the DDP forward passes run eager)")
        if str(config.run.device).startswith("cuda:"):
            refused.append(f"run.device {config.run.device} (one process per device: use auto or cuda)")
        if refused:
            raise ConfigError(f"cannot train at world size {self.world_size} with {'; '.join(refused)}")
        if model.minibatch_stddev and self.is_main:
            print(
                f"note: model.minibatch_stddev takes its statistics over each rank's "
                f"{config.optim.batch_size // self.world_size} samples (as multi-GPU ProGAN/StyleGAN2 do), not over "
                f"the global batch of {config.optim.batch_size}",
                flush=True,
            )

    def device(self, choice: str) -> torch.device:
        """The device of this rank: cuda:LOCAL_RANK for CUDA runs, else the device `choice` names."""
        device = pick_device(choice)
        if self.enabled and device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if self.enabled and device.type == "mps":
            raise ConfigError("torch.distributed does not train on MPS: use run.device cpu or cuda")
        return device

    # ------------------------------------------------------------------------ models and data
    def prepare_models(self, generator: nn.Module, discriminator: nn.Module, device: torch.device):
        """Batch norm as SyncBatchNorm (CUDA), or a one-line refusal (CPU). Returns (generator, discriminator)."""
        if not self.enabled:
            return generator, discriminator
        out = []
        for name, module in (("generator", generator), ("discriminator", discriminator)):
            has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
            if has_bn and device.type != "cuda":
                hint = "set model.d_norm to layer or none" if name == "discriminator" else "use model.arch mlp"
                raise ConfigError(
                    f"the {name} has batch norm, which at world size {self.world_size} needs SyncBatchNorm, and "
                    f"PyTorch runs SyncBatchNorm only on CUDA: train on GPUs, or {hint}"
                )
            out.append(nn.SyncBatchNorm.convert_sync_batchnorm(module) if has_bn else module)
        for layer in discriminator.modules():  # compare each sample with the global batch, not its rank's rows
            if isinstance(layer, MinibatchDiscrimination):
                layer.gather_ranks = True
        return tuple(out)

    def shard_loader(self, loader):
        return ShardedLoader(loader, self.rank, self.world_size) if self.enabled else loader

    def wrap(self, module: nn.Module, method: str | None = None):
        """DistributedDataParallel around `module` (its `method` as the forward), on this rank's device."""
        target = _ForwardAll(module) if method == "forward_all" else module
        device_ids = [self.local_rank] if next(module.parameters()).device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(target, device_ids=device_ids)

    # ------------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each tensor averaged over the ranks (one all-reduce of them all, stacked)."""
        if not self.enabled or not values:
            return values
        keys = list(values)
        flat = torch.stack([values[k].float().flatten() for k in keys])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        return {k: flat[i].view_as(values[k]) for i, k in enumerate(keys)}

    def gather_objects(self, obj) -> list:
        """`obj` of every rank, in rank order (pickled; for small things like RNG states)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def global_mean(local_mean: torch.Tensor, world_size: int) -> torch.Tensor:
    """The mean over the global batch from this rank's mean over its rows (every rank has as many): its value is
    the all-reduced mean, and its gradient reaches this rank's `local_mean` whole (not divided by world_size),
    because DistributedDataParallel averages the ranks' gradients: a loss computed from global means on every
    rank then trains exactly as the same loss of one process's batch means. world_size 1: `local_mean`."""
    if world_size <= 1:
        return local_mean
    total = local_mean.detach().clone()
    torch.distributed.all_reduce(total)
    return local_mean - local_mean.detach() + total / world_size


def from_environment(device_choice: str = "auto") -> Distributed:
    """This process's Distributed from torchrun's variables, joining the process group at world size > 1
    (NCCL when `device_choice` resolves to CUDA, else gloo; a group already joined, e.g. by a test, is used)."""
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return Distributed()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
    dist = torch.distributed
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        backend = "nccl" if pick_device(device_choice).type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend, rank=rank, world_size=world_size)
        except (ValueError, RuntimeError) as exc:  # e.g. no MASTER_ADDR: WORLD_SIZE set by hand, not by torchrun
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"WORLD_SIZE={world_size} is set but the {backend} process group did not start ({first}); "
                "launch with torchrun --nproc-per-node N -m course_lib ..."
            ) from exc
    return Distributed(rank, world_size, local_rank, dist.get_backend())
