"""Convert a UTKFace image folder into the arrays ``feasjax paper utkface_resnet18 --data-dir DIR``
reads (no network: download the aligned and cropped UTKFace images yourself).

    python scripts/utkface_to_npy.py UTKFace/ DIR [--size 200] [--seed 0]

Each file is named ``[age]_[gender]_[race]_[date].jpg``; files that do not parse are skipped.
The preprocessing follows the Feasible Learning paper's code: images resized to ``size x size``
RGB, 70% of the children aged 4 or less left out at random, an 80/20 train/test split, then a
quarter of the training split kept (a small training set that the model can fit), and the
targets standardised as ``(age - 35.43) / 18.77`` (the squared-error bound ε = 0.02 is on that
scale). Writes DIR/x_train.npy (N, size, size, 3) uint8, y_train.npy (N,) float32, and
x_test.npy, y_test.npy alike.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

AGE_MEAN, AGE_STD = 35.43, 18.77  # the paper's standardisation of the age


def parse_age(name: str) -> int | None:
    """The age of ``[age]_[gender]_[race]_[date].jpg``, or ``None`` for another name."""
    parts = os.path.basename(name).split("_")
    if len(parts) != 4 or not parts[0].isdigit() or not name.lower().endswith(".jpg"):
        return None
    return int(parts[0])


def convert(source: str, target: str, *, size: int = 200, seed: int = 0) -> dict:
    from PIL import Image

    files = sorted(f for f in os.listdir(source) if parse_age(f) is not None)
    if not files:
        raise SystemExit(f"{source} holds no [age]_[gender]_[race]_[date].jpg images")
    rng = np.random.default_rng(seed)
    ages = np.array([parse_age(f) for f in files])
    keep = (ages > 4) | (rng.random(len(ages)) < 0.3)  # the paper keeps 30% of the under-5s
    files, ages = [f for f, k in zip(files, keep) if k], ages[keep]
    images = np.stack([np.asarray(Image.open(os.path.join(source, f)).convert("RGB").resize(
        (size, size), Image.LANCZOS), np.uint8) for f in files])
    order = rng.permutation(len(ages))
    cut = int(round(0.8 * len(ages)))
    train, test = order[:cut], order[cut:]
    train = train[:len(train) // 4]
    targets = ((ages - AGE_MEAN) / AGE_STD).astype(np.float32)
    os.makedirs(target, exist_ok=True)
    sizes = {}
    for split, rows in (("train", train), ("test", test)):
        np.save(os.path.join(target, f"x_{split}.npy"), images[rows])
        np.save(os.path.join(target, f"y_{split}.npy"), targets[rows])
        sizes[split] = len(rows)
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the folder of UTKFace .jpg images")
    parser.add_argument("target", help="where to write the .npy arrays")
    parser.add_argument("--size", type=int, default=200, help="image side after resizing")
    parser.add_argument("--seed", type=int, default=0, help="subsampling and split seed")
    args = parser.parse_args(argv)
    sizes = convert(args.source, args.target, size=args.size, seed=args.seed)
    print(f"wrote {args.target}: {sizes['train']} training and {sizes['test']} test images of "
          f"{args.size}x{args.size}")


if __name__ == "__main__":
    main()
