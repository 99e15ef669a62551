"""Benchmark: training images per second at 1, 2, ... data-parallel processes (issue 30), as ratios to one process.

Every count of processes runs in this one invocation, one after the other, on the same machine and the same
settings: a job of N processes (torch.multiprocessing, with the environment torchrun would set) trains at the
global batch --batch-size (each rank at batch / N) for --warmup steps, then --steps timed steps; rank 0
reports images/s = batch * d_steps * steps / seconds (real images D sees per second, all ranks together).
On the CPU each process gets cores // N threads, so the runs share the same cores; on CUDA each process has
one GPU (N at most the GPU count) and the model is the DCGAN (batch norm as SyncBatchNorm).

    python benchmarks/distributed_scaling.py [--device cpu|cuda] [--procs 1,2] [--batch-size 64] [--steps 20]
        [--repeats 3]

Rounds alternate the process counts and the median of --repeats rounds is kept, with every round's figure.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(args) -> dict:
    arch = args.arch or ("dcgan" if args.device == "cuda" else "mlp")  # PyTorch has no SyncBatchNorm on the CPU
    return {
        "model": {"arch": arch, "width": args.width, "latent_dim": 64},
        "optim": {"batch_size": args.batch_size, "steps": args.warmup + args.steps},
        "run": {"device": args.device, "log_every": 10_000, "seed": 0},
        "data": {"limit": 4096},
    }


def _worker(rank: int, world: int, port: int, args, result_path: str) -> None:
    from course_lib.training import TrainConfig, Trainer  # imported in the child, after its environment is set

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    if args.device == "cpu":
        torch.set_num_threads(max(1, args.cores // world))
    trainer = Trainer(TrainConfig.from_dict(_settings(args)), None, progress=False)
    trainer.train(steps=args.warmup)
    if world > 1:
        torch.distributed.barrier()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    started = time.perf_counter()
    trainer.train()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - started
    if rank == 0:
        images = args.batch_size * trainer.config.optim.d_steps * args.steps
        with open(result_path, "w") as f:
            json.dump({"processes": world, "seconds": seconds, "images_per_second": images / seconds}, f)
    if world > 1:
        torch.distributed.destroy_process_group()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--procs", default="1,2", help="comma-separated process counts; 1 is always run first")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--arch", default=None, help="default: dcgan on CUDA, mlp on the CPU")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the process counts (median kept)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU threads shared by the ranks")
    parser.add_argument("--report", type=Path, help="also write DIR/report.json and DIR/report.md")
    args = parser.parse_args(argv)
    load_before = list(os.getloadavg())
    counts = sorted({1, *(int(n) for n in args.procs.split(","))})
    runs: dict[int, list[float]] = {world: [] for world in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):  # rounds alternate the counts, so background load hits them alike
            for world in counts:
                path = os.path.join(tmp, f"{world}.json")
                mp.spawn(_worker, args=(world, _free_port(), args, path), nprocs=world, join=True)
                with open(path) as f:
                    runs[world].append(json.load(f)["images_per_second"])
                print(f"round {round_ + 1}, {world} process(es): {runs[world][-1]:.1f} images/s", flush=True)
    base = statistics.median(runs[1])
    rows = [
        {
            "processes": world,
            "images_per_second_median": statistics.median(values),
            "images_per_second_all": values,
            "ratio_to_one_process": statistics.median(values) / base,
        }
        for world, values in runs.items()
    ]
    result = {
        "benchmark": "distributed_scaling",
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "cpu_threads": args.cores,
        "settings": _settings(args),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "load_average_1_5_15_min_at_start": load_before,
        "load_average_1_5_15_min_at_end": list(os.getloadavg()),
        "command": "python benchmarks/distributed_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    if args.report:
        from course_lib.core.reports import write_report

        write_report(args.report, result, render_markdown)
    print(json.dumps(result))
    return result


def render_markdown(r: dict) -> str:
    """report.md, from report.json alone (course_lib.core.reports)."""
    s = r["settings"]
    one = next(row for row in r["rows"] if row["processes"] == 1)
    spread = max(one["images_per_second_all"]) / min(one["images_per_second_all"])
    load = r["load_average_1_5_15_min_at_start"][0], r["load_average_1_5_15_min_at_end"][0]
    lines = [
        f"# Data-parallel training throughput ({r['device']}, {'gloo' if r['device'] == 'cpu' else 'nccl'})",
        "",
        f"`{r['command']}` (issue 30), {r['date']}, on {r['machine']}; {r['cpu_threads']} CPU threads shared by the "
        f"ranks; 1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end. Settings: "
        f"{s['model']['arch']} GAN (width {s['model']['width']}, latent {s['model']['latent_dim']}), global batch "
        f"{s['optim']['batch_size']} (divided among the ranks), {s['optim']['steps']} steps (warm-up steps first, then the timed ones), "
        "rounds alternating the process counts. Figures: real images D sees per second, all ranks together; "
        "the median round, then every round.",
        "",
        "| processes | n (rounds) | images/s: median (min-max) | every round | ratio to 1 process (of the medians) |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        every = row["images_per_second_all"]
        rounds = ", ".join(f"{v:.1f}" for v in every)
        lines.append(
            f"| {row['processes']} | {len(every)} | {row['images_per_second_median']:.1f} ({min(every):.1f}-"
            f"{max(every):.1f}) | {rounds} | {row['ratio_to_one_process']:.2f} |"
        )
    impossible = [row["processes"] for row in r["rows"] if row["ratio_to_one_process"] > row["processes"] * 1.1]
    lines += [""]
    if impossible or spread > 1.5:
        lines.append(
            f"Not a scaling figure: the one-process rounds vary by a factor of {spread:.1f}"
            + (
                f", and {', '.join(map(str, impossible))} processes would be faster than linear scaling allows"
                if impossible
                else ""
            )
            + ": the machine's other jobs dominate. Measure on an idle machine."
        )
    else:
        lines.append(
            f"The one-process rounds agree within a factor of {spread:.2f}; on a CPU the ranks share the same cores, "
            "so this measures the cost of data parallelism (gradient all-reduce, smaller per-rank batches), not a "
            "speed-up. GPU figures (NCCL, one GPU per rank) need a device."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
