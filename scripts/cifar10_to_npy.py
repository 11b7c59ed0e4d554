"""Convert the public CIFAR-10 python pickles into the arrays ``feasjax paper cifar10_resnet18
--data-dir DIR`` reads (no network: download and untar ``cifar-10-python.tar.gz`` yourself).

    python scripts/cifar10_to_npy.py cifar-10-batches-py/ DIR

writes DIR/x_train.npy (50000, 32, 32, 3) uint8, y_train.npy (50000,) int64, and x_test.npy,
y_test.npy (10000 samples). Each pickle holds b"data" (N, 3072) uint8 rows, the red, green and
blue planes of a 32x32 image in turn, and b"labels".
"""
import os
import pickle
import sys

import numpy as np


def _batches(source, names):
    xs, ys = [], []
    for name in names:
        with open(os.path.join(source, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(batch[b"labels"], np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def main(source: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    splits = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    for split, names in splits.items():
        x, y = _batches(source, names)
        np.save(os.path.join(target, f"x_{split}.npy"), x)
        np.save(os.path.join(target, f"y_{split}.npy"), y)
        print(f"wrote {target}/x_{split}.npy {x.shape}, y_{split}.npy {y.shape}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/cifar10_to_npy.py CIFAR_BATCHES_DIR TARGET_DIR")
    main(*sys.argv[1:])
