"""Making a training step use a GPU close to its limits, with clean fallbacks everywhere else.

A DCGAN-64 step is small (about 0.5 TFLOP at batch 128), so on a fast GPU the time goes as much to
memory traffic, kernel launches and waiting on the host as to arithmetic. The helpers here remove
those costs one by one; each is a choice ("auto" | "on" | "off") resolved against the device, and
"auto" turns it on only where it helps, which is CUDA:

- mixed precision: bf16 autocast (the trainer's `amp` setting, see train.py);
- `channels_last` memory layout: NHWC is the layout tensor-core convolutions use; in NCHW every
  convolution pays for two transposes;
- fused Adam: one kernel updates every parameter (instead of a few per parameter tensor);
- `torch.compile` of the forward passes: Inductor fuses batch norm, activations and casts into few
  kernels. Compilation is probed once on a copy of the module (forward and backward), so a missing
  toolchain (no Triton, no C compiler) or an unsupported model leaves training eager, with a reason,
  instead of failing mid-run;
- cuDNN autotuning and TF32 matmuls (`configure_cuda`): shapes never change between steps (the
  loader drops the last partial batch), so the fastest algorithm is found once;
- the whole uint8 dataset on the GPU when it fits (`data_fits_on_device`): CelebA 64x64 is 2.5 GB, so
  batches are gathered, flipped and scaled on the device with no host-device copy per step.

On the CPU "auto" leaves all of these off (except what PyTorch does by default), so the same code
runs the same way as a plain loop there.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_lib.core.errors import ConfigError

CHOICES = ("auto", "on", "off")
OPTIMIZER_IMPLS = ("auto", "fused", "foreach", "for-loop")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_choice(name: str, value: Any, allowed=CHOICES) -> None:
    """Raise ConfigError unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def resolve(choice: str, device: torch.device, name: str = "setting") -> bool:
    """'on' -> True, 'off' -> False, 'auto' -> True on CUDA only."""
    check_choice(name, choice)
    if choice == "auto":
        return torch.device(device).type == "cuda"
    return choice == "on"


# ---------------------------------------------------------------------------------- the device
def configure_cuda(device: torch.device) -> None:
    """cuDNN autotuning (fixed shapes: pick the fastest convolution once) and TF32 float32 matmuls.

    Process-wide switches, set only when training on CUDA; they change nothing on other devices.
    """
    if torch.device(device).type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def data_fits_on_device(nbytes: int, device: torch.device, fraction: float = 0.25) -> bool:
    """True when a dataset of `nbytes` takes at most `fraction` of the device's free memory (CUDA only)."""
    device = torch.device(device)
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free


def use_data_on_device(choice: str, nbytes: int, device: torch.device) -> bool:
    """'on': the uint8 set goes to the device; 'off': it stays in host memory; 'auto': on CUDA when it fits."""
    check_choice("data_on_device", choice)
    if choice == "auto":
        return data_fits_on_device(nbytes, device)
    return choice == "on"


# ------------------------------------------------------------------------------ memory layout
def to_channels_last(*modules: nn.Module) -> None:
    """Convert every 4-d parameter and buffer of the modules to NHWC (channels_last) in place."""
    for module in modules:
        module.to(memory_format=torch.channels_last)


def channels_last_batch(x: torch.Tensor) -> torch.Tensor:
    """A 4-d batch in channels_last layout (other tensors unchanged)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


# ---------------------------------------------------------------------------------- optimizers
def optimizer_impl(choice: str, device: torch.device, optimizer: str = "adam") -> str:
    """Which implementation an optimizer gets: 'fused', 'foreach' or 'for-loop'.

    'auto' is fused Adam on CUDA (one kernel for all parameters), foreach where fused is not
    available (RMSprop), and on the CPU PyTorch's default (the for-loop, as the plain loop uses).
    """
    check_choice("optimizer_impl", choice, OPTIMIZER_IMPLS)
    device = torch.device(device)
    if choice == "auto":
        if device.type != "cuda":
            return "for-loop"
        choice = "fused"
    if choice == "fused" and optimizer != "adam":
        return "foreach"  # only Adam(W)/SGD/Adagrad have fused kernels
    return choice


def make_optimizer(
    params,
    optimizer: str = "adam",
    lr: float = 2e-4,
    betas=(0.5, 0.999),
    device: torch.device | str = "cpu",
    impl: str = "auto",
) -> tuple[torch.optim.Optimizer, str]:
    """(optimizer, implementation used) for 'adam' (lr, betas) or 'rmsprop' (lr), fused/foreach per `impl`.

    Every implementation computes the same update (Kingma & Ba's Adam); they differ in how many
    kernels it takes and in float rounding only.
    """
    chosen = optimizer_impl(impl, torch.device(device), optimizer)
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}[chosen]
    if optimizer == "adam":
        return torch.optim.Adam(params, lr, betas=tuple(betas), **flags), chosen
    if optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr, **flags), chosen
    raise ConfigError(f"unknown optimizer {optimizer!r}; choose adam or rmsprop")


# ------------------------------------------------------------------------------------ compile
def compile_available() -> tuple[bool, str]:
    """(whether torch.compile can be tried here, why not)."""
    if not hasattr(torch, "compile"):
        return False, f"torch {torch.__version__} has no torch.compile (needs PyTorch >= 2.0)"
    try:
        importlib.import_module("torch._dynamo")
    except Exception as exc:  # noqa: BLE001 - any import failure means the same: no compiler
        return False, f"torch._dynamo cannot be imported ({exc})"
    return True, ""


@dataclass
class CompileResult:
    """What `maybe_compile` did: the callable to use, whether it is compiled, and why (not)."""

    fn: Callable
    compiled: bool
    reason: str

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def _describe(exc: BaseException) -> str:
    """'Type: first line' of an exception and of its root cause (compiler errors wrap the real one)."""

    def line(e):
        text = str(e).strip()
        return f"{type(e).__name__}: {text.splitlines()[0][:200] if text else ''}"

    root = exc
    while (getattr(root, "inner_exception", None) or root.__cause__) is not None:
        root = getattr(root, "inner_exception", None) or root.__cause__
    return line(exc) if root is exc else f"{line(exc)} <- {line(root)}"


def _probe(compiled_copy: Callable, example: tuple, context: Callable) -> None:
    """Run a compiled copy forward and backward once, so compiler failures show up now (not mid-run)."""
    with context():
        out = compiled_copy(*example)
    outs = out.values() if isinstance(out, dict) else [out] if isinstance(out, torch.Tensor) else out
    loss = sum(o.float().sum() for o in outs if isinstance(o, torch.Tensor) and o.is_floating_point())
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()


def maybe_compile(
    module: nn.Module,
    choice: str = "auto",
    device: torch.device | str = "cpu",
    example: tuple | None = None,
    mode: str = "default",
    backend: str | Callable = "inductor",
    unsupported: str | None = None,
    context: Callable = contextlib.nullcontext,
    method: str | None = None,
) -> CompileResult:
    """`torch.compile` a module's forward where it helps, else the module itself, always with a reason.

    choice: 'auto' compiles on CUDA only (on the CPU, compile time outweighs the gain for these small
    models), 'on' always tries, 'off' never. `unsupported`: a reason this model cannot be compiled
    (e.g. a double-backward gradient penalty), which turns 'auto' and 'on' into eager.

    With `example` inputs, a deep copy of the module is compiled and run forward and backward first:
    any compiler failure (no Triton, no C compiler, an unsupported operation) then leaves the module
    eager with the error as the reason, and the real module is untouched by the probe. The returned
    callable shares the module's parameters and buffers; the module itself (its state_dict, its use
    in eval mode) is unchanged. fullgraph=True: a graph break is an error at trace time, before any
    computation runs, rather than a silent half-compiled model. `context`: a context manager factory
    the probe runs under (the trainer's autocast), so it compiles the graph training will use.
    `method`: compile this method (e.g. 'forward_all') instead of the module's __call__.
    """
    check_choice("compile", choice)
    check_choice("compile mode", mode, COMPILE_MODES)
    device = torch.device(device)
    target = module if method is None else getattr(module, method)
    if choice == "off":
        return CompileResult(target, False, "compile: off")
    if choice == "auto" and device.type != "cuda":
        return CompileResult(target, False, f"compile: auto compiles on CUDA only (device {device.type})")
    if unsupported:
        return CompileResult(target, False, f"compile: not used, {unsupported}")
    ok, why = compile_available()
    if not ok:
        return CompileResult(target, False, f"compile: unavailable, {why}")
    # dynamic=False: shapes never change between steps (the loader drops the last partial batch).
    options = {"mode": None if mode == "default" else mode, "backend": backend, "fullgraph": True, "dynamic": False}
    if example is not None:
        probe = copy.deepcopy(module)
        try:
            _probe(torch.compile(probe if method is None else getattr(probe, method), **options), example, context)
        except Exception as exc:  # noqa: BLE001 - compilers fail in many ways; all mean "stay eager"
            reason = f"compile: failed, running eager ({_describe(exc)})"
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
            return CompileResult(target, False, reason)
        finally:
            del probe
    name = backend if isinstance(backend, str) else getattr(backend, "__name__", "custom backend")
    return CompileResult(torch.compile(target, **options), True, f"compile: on ({name}, mode {mode})")


def set_optimizer_impl(optimizer: torch.optim.Optimizer, impl: str) -> None:
    """Reset the implementation flags in an optimizer's param groups to `impl`.

    Needed after `load_state_dict`: the groups come back with the flags of the machine that wrote the
    checkpoint (fused on a GPU), which may not be what this machine chose.
    """
    for group in optimizer.param_groups:
        if "fused" in group:
            group["fused"] = True if impl == "fused" else None
        if "foreach" in group:
            group["foreach"] = {"fused": None, "foreach": True, "for-loop": False}[impl]
