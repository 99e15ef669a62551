"""Build course_lib/assets/mnist_subset.npz, the MNIST subset embedded in the package.

Source: the official MNIST IDX files (here read from ../shared/data/MNIST/raw, byte-identical to
http://yann.lecun.com/exdb/mnist/). Takes the first 10,000 training and the first 2,000 test digits
in their official order, so the subset is the same on every machine.

    python scripts/make_embedded_mnist.py [--raw ../shared/data/MNIST/raw]
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

from course_lib.data import EMBEDDED_MNIST, read_idx

N_TRAIN, N_TEST = 10_000, 2_000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/MNIST/raw"))
    args = parser.parse_args()
    raw = Path(args.raw)
    arrays = {
        "train_images": read_idx(raw / "train-images-idx3-ubyte")[:N_TRAIN],
        "train_labels": read_idx(raw / "train-labels-idx1-ubyte")[:N_TRAIN],
        "test_images": read_idx(raw / "t10k-images-idx3-ubyte")[:N_TEST],
        "test_labels": read_idx(raw / "t10k-labels-idx1-ubyte")[:N_TEST],
    }
    np.savez_compressed(EMBEDDED_MNIST, **arrays)
    for f in sorted(raw.iterdir()):
        print(f"sha256 {hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}")
    print(f"wrote {EMBEDDED_MNIST} ({EMBEDDED_MNIST.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
