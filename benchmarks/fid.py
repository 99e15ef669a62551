"""Benchmark: Inception feature extraction (course_lib vs pytorch-fid) and FID's matrix square root (vs scipy).

Both extractors run in this one process, on the same device, the same images (real MNIST digits as
RGB, resized to 299x299 inside each network) and the same weights (the real FID weights when they
can be found, otherwise the same random weights), timed alternately so that background load hits
both alike; the best of --repeats rounds is kept. The square-root part times tr((S1 S2)^{1/2}) at
2048 dimensions: our symmetric-eigenvalue route vs scipy.linalg.sqrtm(S1 S2), pytorch-fid's (best of
several calls each).

    python benchmarks/fid.py [--device cpu|cuda] [--images 100] [--batch-size 50] [--repeats 3]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pytorch_fid_extractor(state_dict, device):
    """pytorch-fid's InceptionV3 (pool3 block), loading `state_dict` instead of downloading."""
    import pytorch_fid.inception as pfi

    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *args, **kwargs: state_dict
    try:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(device)
    finally:
        pfi.load_state_dict_from_url = original

    def run(images: torch.Tensor, batch_size: int) -> np.ndarray:
        # pytorch-fid's get_activations loop, on in-memory images in [0, 1].
        out = np.empty((len(images), 2048))
        start = 0
        for batch in images.split(batch_size):
            with torch.no_grad():
                pred = model(batch.to(device).float() / 255)[0]
            pred = pred.squeeze(3).squeeze(2).cpu().numpy()
            out[start : start + len(pred)] = pred
            start += len(pred)
        return out

    return run


def main(argv=None) -> None:
    from course_lib.core.runtime import pick_device
    from course_lib.data import load_embedded_mnist
    from course_lib.metrics import extract_features
    from course_lib.metrics.errors import WeightsNotFound
    from course_lib.metrics.features import InceptionExtractor
    from course_lib.metrics.fid import trace_sqrt_product, trace_sqrt_product_scipy
    from course_lib.metrics.inception import find_inception_weights, random_inception_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dim", type=int, default=2048, help="covariance size for the square-root timing")
    parser.add_argument("--skip-sqrtm", action="store_true", help="skip the (slow) scipy square-root timing")
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    try:
        weights = find_inception_weights(download=False)
    except WeightsNotFound:
        weights = random_inception_weights(0)
    state = dict(weights.state_dict)
    if "fc.weight" not in state:  # pytorch-fid's loader insists on a head it never uses
        state.update({"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, weights: {weights.source}")

    digits = load_embedded_mnist("test").images[: args.images]
    images = digits.expand(-1, 3, -1, -1).contiguous()  # RGB uint8, 28x28; both resize to 299x299

    ours = InceptionExtractor(weights, device=device)
    theirs = pytorch_fid_extractor(state, device)
    # Warm up (allocator, cuDNN/oneDNN kernel choice), and check both give the same features.
    f_ours = extract_features(images[: args.batch_size], ours, batch_size=args.batch_size, progress=False).features
    f_theirs = theirs(images[: args.batch_size], args.batch_size)
    max_diff = float(np.abs(f_ours.numpy() - f_theirs).max() / np.abs(f_theirs).max())
    times = {"ours": [], "pytorch_fid": []}
    for _ in range(args.repeats):
        for name in ("pytorch_fid", "ours"):
            sync(device)
            start = time.perf_counter()
            if name == "ours":
                extract_features(images, ours, batch_size=args.batch_size, progress=False)
            else:
                theirs(images, args.batch_size)
            sync(device)
            times[name].append(time.perf_counter() - start)
    ours_rate = len(images) / min(times["ours"])
    theirs_rate = len(images) / min(times["pytorch_fid"])
    print(
        f"extraction, {len(images)} images, batch {args.batch_size}: ours {ours_rate:.2f} img/s, "
        f"pytorch-fid {theirs_rate:.2f} img/s, speedup {ours_rate / theirs_rate:.2f}x "
        f"(max relative feature difference {max_diff:.1e})"
    )

    # Square root at 2048-d: realistic covariances (correlated features, full rank).
    rng = np.random.default_rng(0)
    d = args.dim
    mixing = rng.standard_normal((d, d)) / np.sqrt(d)
    x = rng.standard_normal((2 * d, d)) @ mixing
    y = rng.standard_normal((2 * d, d)) @ (mixing + 0.1 * rng.standard_normal((d, d)) / np.sqrt(d))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)

    def best_time(fn, repeats: int) -> tuple[float, float]:
        """(best wall time over `repeats` calls, the value); the first call also pays for thread-pool start-up."""
        best, value = float("inf"), None
        for _ in range(repeats):
            start = time.perf_counter()
            value = fn(s1, s2)
            best = min(best, time.perf_counter() - start)
        return best, value

    t_ours, tr_ours = best_time(trace_sqrt_product, max(3, args.repeats))
    t_scipy, tr_scipy = None, None
    if not args.skip_sqrtm:
        t_scipy, tr_scipy = best_time(trace_sqrt_product_scipy, 2)
        print(
            f"tr sqrt(S1 S2) at {d}-d: ours {t_ours:.2f} s, scipy sqrtm {t_scipy:.2f} s, "
            f"speedup {t_scipy / t_ours:.1f}x (relative difference {abs(tr_ours - tr_scipy) / abs(tr_scipy):.1e})"
        )
    print(
        json.dumps(
            {
                "device": str(device),
                "threads": torch.get_num_threads(),
                "weights": weights.source,
                "images": len(images),
                "batch_size": args.batch_size,
                "ours_images_per_s": round(ours_rate, 3),
                "pytorch_fid_images_per_s": round(theirs_rate, 3),
                "extraction_speedup": round(ours_rate / theirs_rate, 3),
                "feature_max_rel_diff": max_diff,
                "sqrt_dim": d,
                "sqrt_ours_s": round(t_ours, 3),
                "sqrt_scipy_s": None if t_scipy is None else round(t_scipy, 3),
                "sqrt_speedup": None if t_scipy is None else round(t_scipy / t_ours, 2),
                "sqrt_rel_diff": None if tr_scipy is None else abs(tr_ours - tr_scipy) / abs(tr_scipy),
            }
        )
    )


if __name__ == "__main__":
    main()
