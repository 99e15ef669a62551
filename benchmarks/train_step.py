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
memory, a .item() per loss); the trainer uses course_lib.speed's CUDA defaults (bf16 autocast,
channels_last, fused Adam, torch.compile with eager fallback, the uint8 set on the GPU, no host sync
inside the step). Goal on one H100 at batch 128: ratio >= 2, and a CelebA epoch (202,599 images) in
under a minute; `epoch_seconds_estimate` is 202,599 / images per second, and --full-epoch times one
real epoch of the trainer over a synthetic 202,599-image set held on the GPU. --ablation adds the
trainer with compile off and with amp off, to show what each setting buys.

The last printed line is JSON: images/s of each and their ratio (course_lib / plain).
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn

from course_lib.data import ImageData
from course_lib.env import pick_device
from course_lib.models import build_models
from course_lib.train import TrainConfig, Trainer


def synthetic_images(n: int, size: int = 64) -> ImageData:
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageData(images, None, "synthetic", f"{n} random 64x64 RGB images")


class TutorialLoop:
    """The official DCGAN tutorial's training loop (sigmoid + BCELoss, one fake batch reused for G)."""

    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int = 0):
        torch.manual_seed(seed)
        self.netG, netD = build_models("dcgan", 100, 64, 3, 64)
        self.netG.to(device)
        self.netD = nn.Sequential(netD, nn.Sigmoid()).to(device)
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.data, self.batch_size, self.device = data.images, batch_size, device
        self.perm, self.pos = torch.randperm(len(data)), 0
        self.losses = []

    def step(self):
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos = (self.pos + self.batch_size) % (len(self.perm) - self.batch_size)
        real = (self.data[idx].to(self.device).float() / 127.5 - 1)
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


def make_trainer(data: ImageData, batch_size: int, device: torch.device, **settings) -> Trainer:
    """course_lib's trainer on `data`: its device defaults ("auto") unless `settings` say otherwise."""
    config = TrainConfig(dataset="synthetic", arch="dcgan", latent_dim=100, width=64, batch_size=batch_size,
                         steps=10**9, device=str(device), log_every=50, **settings)
    return Trainer(config, out_dir=None, data=data, progress=True)


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
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on the CPU, 128 on CUDA")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default: 5 CPU, 50 CUDA)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 2 CPU, 30 CUDA)")
    parser.add_argument("--full-epoch", action="store_true", help="CUDA: also time one real 202,599-image epoch")
    parser.add_argument("--ablation", action="store_true", help="also time the trainer with compile off / amp off")
    args = parser.parse_args()
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    batch_size = args.batch_size or (128 if cuda else 64)
    steps = args.steps or (50 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (30 if cuda else 2)
    data = synthetic_images(max(1024, batch_size * 4) if not cuda else 16384)

    plain = TutorialLoop(data, batch_size, device)
    # On the CPU every "auto" speed setting is off: the trainer is the plain loop plus bookkeeping.
    trainers = {"course_lib": make_trainer(data, batch_size, device)}
    if args.ablation:
        trainers["course_lib_no_compile"] = make_trainer(data, batch_size, device, compile="off")
        trainers["course_lib_fp32"] = make_trainer(data, batch_size, device, amp="off")

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
    for _ in range(args.rounds):
        for name, fn in runners.items():
            sync(device)
            start = time.perf_counter()
            fn(steps)
            sync(device)
            times[name].append(time.perf_counter() - start)
    images = batch_size * steps
    result = {
        "benchmark": "dcgan64_train_step",
        "device": torch.cuda.get_device_name(device) if cuda else f"{device} ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "batch_size": batch_size,
        "steps_per_round": steps,
        "rounds": args.rounds,
        "course_lib_settings": trainers["course_lib"].speed,
    }
    for name in runners:
        result[f"{name}_images_per_s"] = round(images / statistics.median(times[name]), 2)
    result["ratio"] = round(result["course_lib_images_per_s"] / result["plain_images_per_s"], 3)
    result["epoch_seconds_estimate"] = round(CELEBA_IMAGES / result["course_lib_images_per_s"], 1)
    if args.full_epoch:
        result.update(time_full_epoch(batch_size, device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
