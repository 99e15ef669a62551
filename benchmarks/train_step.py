"""Throughput of course_lib's trainer vs a plain PyTorch loop written like the official DCGAN tutorial.

Both train the same DCGAN-64 (3x64x64 images, width 64, latent 100, BCE, Adam(2e-4, (0.5, 0.999)))
on the same in-memory images, on the same device, in this one process. Rounds alternate between
the two so that machine noise hits both alike; the median round of each is reported.

    python benchmarks/train_step.py [--device cpu] [--batch-size 64] [--steps 5] [--rounds 5]

The last printed line is JSON: images/s of each and their ratio (course_lib / plain). The trainer's
bookkeeping (logging, noise generator, progress bar) should cost under 5%: ratio >= 0.95.
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
from course_lib.train import Trainer, TrainConfig


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    device = pick_device(args.device)
    data = synthetic_images(max(1024, args.batch_size * 4))

    plain = TutorialLoop(data, args.batch_size, device)
    config = TrainConfig(dataset="synthetic", arch="dcgan", latent_dim=100, width=64, batch_size=args.batch_size,
                         steps=10**9, device=str(device), amp="off", log_every=50)
    trainer = Trainer(config, out_dir=None, data=data, progress=True)

    def run_plain(n):
        for _ in range(n):
            plain.step()

    def run_trainer(n):
        trainer.train(steps=trainer.step + n)

    for fn in (run_plain, run_trainer):
        fn(args.warmup)
    sync(device)
    times = {"plain": [], "course_lib": []}
    for _ in range(args.rounds):
        for name, fn in (("plain", run_plain), ("course_lib", run_trainer)):
            sync(device)
            start = time.perf_counter()
            fn(args.steps)
            sync(device)
            times[name].append(time.perf_counter() - start)
    images = args.batch_size * args.steps
    result = {
        "benchmark": "dcgan64_train_step",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device} ({torch.get_num_threads()} threads)",
        "batch_size": args.batch_size,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "plain_images_per_s": round(images / statistics.median(times["plain"]), 2),
        "course_lib_images_per_s": round(images / statistics.median(times["course_lib"]), 2),
    }
    result["ratio"] = round(result["course_lib_images_per_s"] / result["plain_images_per_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
