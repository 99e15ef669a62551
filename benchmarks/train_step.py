"""Throughput of course_lib's trainer vs a plain PyTorch loop written like the official DCGAN tutorial.

Both train the same DCGAN-64 (3x64x64 images, width 64, latent 100, BCE, Adam(2e-4, (0.5, 0.999)))
on the same in-memory images, on the same device, in this one process. Rounds alternate between
the two so that machine noise hits both alike; the median round of each is reported.

    python benchmarks/train_step.py [--device cpu] [--batch-size 64] [--steps 5] [--rounds 5]
    python benchmarks/train_step.py --device cuda --batch-size 128 [--full-epoch] [--ablation]

CPU mode: the trainer runs with its CPU settings (fp32, eager, PyTorch's default Adam), so the
ratio measures its bookkeeping (logging, noise generator, progress bar), which should cost under 5%:
ratio >= 0.95.

CUDA mode: the plain loop stays the tutorial's (fp32, no compile, NCHW, uint8 batches copied from host
memory, a .item() per loss); the trainer uses course_lib.training.speed's CUDA defaults (bf16 autocast,
channels_last, fused Adam, torch.compile with eager fallback, the uint8 set on the GPU, no host sync
inside the step). Goal on one H100 at batch 128: ratio >= 2, and a CelebA epoch (202,599 images) in
under a minute; `epoch_seconds_estimate` is 202,599 / images per second, and --full-epoch times one
real epoch of the trainer over a synthetic 202,599-image set held on the GPU. --ablation adds the
trainer with compile off and with amp off, to show what each setting buys.

CPU ablation (`--device cpu --ablation`): each CPU speed setting of the trainer (channels_last,
torch.compile with the inductor CPU backend, foreach and fused Adam, the uint8 set gathered as one
tensor "on the device") against the same plain loop, for each thread count of --threads (default 1 and 2),
all in this one process with alternating rounds. `--model mnist` times the main job's DCGAN-28 (the
`mnist-main-job` preset: width, upsampling, batch) on the embedded MNIST digits instead of DCGAN-64.
For every setting `same_result` compares it with the default trainer from the same seed after a few
steps: the generator's parameter difference relative to how far those steps moved it (0: bit-identical;
a float-rounding change shows as about 1e-4 to 1e-3, because Adam rescales even tiny gradient differences
to a step of about lr; a different computation or another seed gives about 1).

The last printed line is JSON: images/s of each and their ratio (course_lib / plain).
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn

from course_lib.core.runtime import pick_device
from course_lib.data import ImageData
from course_lib.nn.models import build_models
from course_lib.training import TrainConfig, Trainer
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS


def synthetic_images(n: int, size: int = 64) -> ImageData:
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageData(images, None, "synthetic", f"{n} random 64x64 RGB images")


# The models each --model times: DCGAN-64 (CelebA, the tutorial's) or the main job's DCGAN-28 on MNIST.
MODELS = {
    "dcgan64": {"width": 64, "g_upsample": "transposed"},
    "mnist": {k: PRESETS[MAIN_JOB_PRESET]["model"][k] for k in ("width", "g_upsample")},
}


class TutorialLoop:
    """The official DCGAN tutorial's training loop (sigmoid + BCELoss, one fake batch reused for G)."""

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        width: int = 64,
        g_upsample: str = "transposed",
    ):
        torch.manual_seed(seed)
        _, channels, size, _ = data.images.shape
        self.netG, netD = build_models("dcgan", 100, size, channels, width, g_upsample=g_upsample)
        self.netG.to(device)
        self.netD = nn.Sequential(netD, nn.Sigmoid()).to(device)
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.data, self.batch_size, self.device = data.images, batch_size, device
        self.perm, self.pos = torch.randperm(len(data)), 0
        self.losses = []

    def step(self):
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos = (self.pos + self.batch_size) % (len(self.perm) - self.batch_size)
        real = self.data[idx].to(self.device).float() / 127.5 - 1
        b = real.size(0)
        real_label = torch.full((b,), 1.0, device=self.device)
        fake_label = torch.full((b,), 0.0, device=self.device)
        self.netD.zero_grad()
        output = self.netD(real).view(-1)
        errD_real = self.criterion(output, real_label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b, 100, 1, 1, device=self.device)
        fake = self.netG(noise)
        output = self.netD(fake.detach()).view(-1)
        errD_fake = self.criterion(output, fake_label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        self.optD.step()
        self.netG.zero_grad()
        output = self.netD(fake).view(-1)
        errG = self.criterion(output, real_label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optG.step()
        self.losses.append(((errD_real + errD_fake).item(), errG.item(), D_x, D_G_z1, D_G_z2))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


CELEBA_IMAGES = 202_599


def make_trainer(
    data: ImageData, batch_size: int, device: torch.device, model: dict | None = None, settings: dict | None = None
) -> Trainer:
    """course_lib's trainer on `data` with the plain loop's model (`model`: its width and g_upsample, as in
    MODELS); `settings` are config paths such as {"speed.compile": "off"}; the speed settings stay "auto"
    (the device's defaults) unless they say otherwise."""
    config = TrainConfig.from_dict(
        {
            "data.dataset": "synthetic",
            "model.arch": "dcgan",
            "model.latent_dim": 100,
            **{f"model.{name}": value for name, value in {"width": 64, **(model or {})}.items()},
            "optim.batch_size": batch_size,
            "optim.steps": 10**9,
            "run.device": str(device),
            "run.log_every": 50,
            **(settings or {}),
        }
    )
    return Trainer(config, out_dir=None, data=data, progress=True)


# The CPU speed settings the ablation tries, each against the CPU defaults (all "off"/PyTorch's Adam).
CPU_ABLATION = {
    "channels_last": {"speed.channels_last": "on"},
    "compile": {"speed.compile": "on"},
    "adam_foreach": {"speed.optimizer_impl": "foreach"},
    "adam_fused": {"speed.optimizer_impl": "fused"},
    "data_on_device": {"speed.data_on_device": "on"},
}


def same_result(
    data: ImageData, batch_size: int, device: torch.device, model: dict, settings: dict, steps: int = 3
) -> dict:
    """How far a setting moves the result: after `steps` steps from the same seed, the generator's parameter
    difference to the default trainer, relative to how far the default trainer's steps moved it."""

    def params(trainer):
        return torch.cat([p.detach().float().flatten().cpu() for p in trainer.generator.parameters()])

    reference = make_trainer(data, batch_size, device, model)
    start = params(reference)
    reference.train(steps=steps)
    other = make_trainer(data, batch_size, device, model, settings)
    other.train(steps=steps)
    moved = (params(reference) - start).norm()
    relative = float((params(other) - params(reference)).norm() / moved)
    return {"relative_param_difference": float(f"{relative:.2g}"), "speed": other.speed}


def cpu_ablation(args, data: ImageData, batch_size: int, model: dict) -> dict:
    """Each CPU speed setting vs the plain loop, per thread count, in alternating rounds (median round)."""
    device = torch.device("cpu")
    threads_before = torch.get_num_threads()
    out = {"threads": {}, "same_result": {}}
    try:
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            plain = TutorialLoop(data, batch_size, device, **model)
            trainers = {"course_lib": make_trainer(data, batch_size, device, model)}
            for name, settings in CPU_ABLATION.items():
                trainers[name] = make_trainer(data, batch_size, device, model, settings)
            speeds = {name: t.speed for name, t in trainers.items()}
            per_s = time_rounds(
                plain,
                trainers,
                batch_size,
                args.steps or 5,
                args.rounds,
                args.warmup if args.warmup is not None else 2,
                device,
            )
            row = {
                name: {"images_per_s": v, "ratio_to_plain": round(v / per_s["plain"], 3)} for name, v in per_s.items()
            }
            row["compile_status"] = {k: speeds["compile"][k] for k in ("compile_g", "compile_d")}
            out["threads"][str(threads)] = row
        torch.set_num_threads(threads_before)
        for name, settings in CPU_ABLATION.items():
            out["same_result"][name] = same_result(data, batch_size, device, model, settings)
    finally:
        torch.set_num_threads(threads_before)
    return out


def time_rounds(
    plain, trainers: dict, batch_size: int, steps: int, rounds: int, warmup: int, device: torch.device
) -> dict:
    """Images/s (median round) of the plain loop and each trainer, rounds alternating between them."""

    def run_plain(n):
        for _ in range(n):
            plain.step()

    def trainer_runner(trainer):
        return lambda n: trainer.train(steps=trainer.step + n)

    runners = {"plain": run_plain, **{name: trainer_runner(t) for name, t in trainers.items()}}
    for fn in runners.values():
        fn(warmup)
    sync(device)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            sync(device)
            start = time.perf_counter()
            fn(steps)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: round(batch_size * steps / statistics.median(t), 2) for name, t in times.items()}


def time_full_epoch(batch_size: int, device: torch.device) -> dict:
    """Seconds for one epoch of the trainer over a synthetic CelebA-sized uint8 set (after a warm-up)."""
    trainer = make_trainer(synthetic_images(CELEBA_IMAGES), batch_size, device)
    steps = trainer.loader.batches_per_epoch
    trainer.train(steps=20)  # compile and autotune outside the timed epoch
    sync(device)
    start = time.perf_counter()
    trainer.train(steps=20 + steps)
    sync(device)
    seconds = time.perf_counter() - start
    return {"full_epoch_images": steps * batch_size, "full_epoch_seconds": round(seconds, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="dcgan64",
        help="dcgan64 (synthetic 64x64 RGB) or mnist (the main job's DCGAN-28 on the embedded digits)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: 64 on the CPU, 128 on CUDA (mnist: the main-job preset's)",
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default: 5 CPU, 50 CUDA)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 2 CPU, 30 CUDA)")
    parser.add_argument("--full-epoch", action="store_true", help="CUDA: also time one real 202,599-image epoch")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="CUDA: also time the trainer with compile off / amp off; CPU: every CPU speed setting",
    )
    parser.add_argument("--threads", default="1,2", help="CPU ablation: thread counts to time (default 1,2)")
    args = parser.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    model = MODELS[args.model]
    if args.model == "mnist":
        from course_lib.data import load_dataset

        data = load_dataset("mnist")
        batch_size = args.batch_size or PRESETS[MAIN_JOB_PRESET]["optim"]["batch_size"]
    else:
        batch_size = args.batch_size or (128 if cuda else 64)
        data = synthetic_images(max(1024, batch_size * 4) if not cuda else 16384)
    steps = args.steps or (50 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (30 if cuda else 2)
    result = {
        "benchmark": f"{args.model}_train_step",
        "device": torch.cuda.get_device_name(device) if cuda else f"{device} ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "batch_size": batch_size,
        "steps_per_round": steps,
        "rounds": args.rounds,
    }
    if args.ablation and not cuda:
        ablation = cpu_ablation(args, data, batch_size, model)
        result["cpu_ablation"] = ablation
        default_threads = str(torch.get_num_threads())
        row = ablation["threads"].get(default_threads) or next(iter(ablation["threads"].values()))
        result["course_lib_images_per_s"] = row["course_lib"]["images_per_s"]
        result["plain_images_per_s"] = row["plain"]["images_per_s"]
        result["ratio"] = row["course_lib"]["ratio_to_plain"]
        print(json.dumps(result))
        return

    plain = TutorialLoop(data, batch_size, device, **model)
    # On the CPU every "auto" speed setting is off: the trainer is the plain loop plus bookkeeping.
    trainers = {"course_lib": make_trainer(data, batch_size, device, model)}
    if args.ablation:
        trainers["course_lib_no_compile"] = make_trainer(data, batch_size, device, model, {"speed.compile": "off"})
        trainers["course_lib_fp32"] = make_trainer(data, batch_size, device, model, {"speed.amp": "off"})
    result["course_lib_settings"] = trainers["course_lib"].speed
    per_s = time_rounds(plain, trainers, batch_size, steps, args.rounds, warmup, device)
    for name, value in per_s.items():
        result[f"{name}_images_per_s"] = value
    result["ratio"] = round(result["course_lib_images_per_s"] / result["plain_images_per_s"], 3)
    result["epoch_seconds_estimate"] = round(CELEBA_IMAGES / result["course_lib_images_per_s"], 1)
    if args.full_epoch:
        result.update(time_full_epoch(batch_size, device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
