"""A generated preference task for language models: sorting digits, with a correct and a
corrupted continuation (numpy only, nothing downloaded)."""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

__all__ = ["PreferenceTask", "sorting_preferences"]

PAD, BOS, SEP, EOS = 0, 1, 2, 3
FIRST_DIGIT = 4


@dataclasses.dataclass(frozen=True)
class PreferenceTask:
    """The sorting preference task of :func:`sorting_preferences`.

    ``sft`` maps ``tokens`` ``(S, T)`` int32 and ``mask`` ``(S, T)`` float32 (1 on the
    continuation and ``EOS``); ``train`` and ``test`` map ``chosen``, ``rejected`` ``(N, T)``
    int32, ``chosen_mask``, ``rejected_mask`` ``(N, T)`` float32, and ``hard``, ``noisy``
    ``(N,)`` bool (which pairs are hard, which had their labels exchanged).

    Example:
      >>> import feasjax as fj
      >>> task = fj.data.sorting_preferences(0, num_sft=4, num_train=8, num_test=4)
      >>> sorted(task.train), task.max_length
      (['chosen', 'chosen_mask', 'hard', 'noisy', 'rejected', 'rejected_mask'], 19)
    """

    sft: dict
    train: dict
    test: dict
    vocab_size: int
    max_length: int


def _sequence(x: np.ndarray, y: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    k = len(x)
    tokens = np.full(length, PAD, np.int32)
    tokens[:2 * k + 3] = [BOS, *(x + FIRST_DIGIT), SEP, *(y + FIRST_DIGIT), EOS]
    mask = np.zeros(length, np.float32)
    mask[k + 2:2 * k + 3] = 1.0  # the continuation and EOS
    return tokens, mask


def _corrupt(rng: np.random.Generator, y: np.ndarray, digits: int, hard: bool) -> np.ndarray:
    bad = y.copy()
    steps = np.flatnonzero(np.diff(y) == 1) if hard else np.flatnonzero(np.diff(y) != 0)
    if len(steps) and (hard or rng.random() < 0.5):
        j = rng.choice(steps)
        bad[j], bad[j + 1] = y[j + 1], y[j]
    else:  # change one digit
        j = rng.integers(len(y))
        bad[j] = (y[j] + rng.integers(1, digits)) % digits
    return bad


def _prompt(rng: np.random.Generator, k: int, digits: int, hard: bool) -> np.ndarray:
    while True:
        x = rng.integers(digits, size=k)
        if not hard or np.any(np.diff(np.sort(x)) == 1):  # a hard pair needs neighbours +1
            return x


def _lengths(rng: np.random.Generator, n: int, short: tuple, long: tuple, rare: float):
    """Prompt lengths, long for a fraction ``rare`` of the rows (``hard``)."""
    hard = rng.permutation(n) < int(round(rare * n))
    k = np.where(hard, rng.integers(long[0], long[1] + 1, n),
                 rng.integers(short[0], short[1] + 1, n))
    return k, hard


def _pairs(rng: np.random.Generator, n: int, digits: int, short: tuple, long: tuple,
           hard_fraction: float, noise: float, length: int) -> dict:
    ks, hard = _lengths(rng, n, short, long, hard_fraction)
    noisy = rng.permutation(n) < int(round(noise * n))
    rows = []
    for k, h, flip in zip(ks, hard, noisy):
        x = _prompt(rng, k, digits, h)
        y = np.sort(x)
        good, bad = _sequence(x, y, length), _sequence(x, _corrupt(rng, y, digits, h), length)
        rows.append((bad, good) if flip else (good, bad))
    (chosen, chosen_mask), (rejected, rejected_mask) = (
        tuple(np.stack(parts) for parts in zip(*side)) for side in zip(*rows))
    return {"chosen": chosen, "rejected": rejected, "chosen_mask": chosen_mask,
            "rejected_mask": rejected_mask, "hard": hard, "noisy": noisy}


def _check(name: str, value: object, low: float, high: float, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        raise ValueError(f"{name} must be {'an int' if integer else 'a number'} in "
                         f"[{low}, {high}], got {name}={value!r}")


def sorting_preferences(seed: int = 0, *, num_sft: int = 2048, num_train: int = 512,
                        num_test: int = 512, digits: int = 10, short: tuple = (3, 5),
                        long: tuple = (7, 8), hard_fraction: float = 0.15,
                        sft_long_fraction: float = 0.05,
                        label_noise: float = 0.05) -> PreferenceTask:
    """Sorting sequences to fine-tune on, and preference pairs.

    Every sequence is ``BOS x_1..x_k SEP y_1..y_k EOS`` right-padded with ``PAD``, ``y`` being
    ``x`` sorted. ``sft`` holds correct sequences (long prompts rare) to fine-tune a base model
    on. In the ``train`` and ``test`` pairs the chosen continuation is the sorted one and the
    rejected one a corruption of it (two adjacent unequal digits swapped, or one digit
    changed); *hard* pairs have long prompts (what the base model saw least) and swap two
    neighbours that differ by one (the subtlest error). Test pairs are clean (no label noise),
    so held-out accuracy measures the true preference.

    Args:
      seed: seed of the numpy generator that draws everything.
      num_sft, num_train, num_test: supervised sequences, training pairs, held-out pairs.
      digits: size of the digit alphabet (the vocabulary is ``digits + 4``).
      short, long: ``(min, max)`` prompt lengths of easy and of hard (rare) sequences.
      hard_fraction: fraction of hard pairs in ``train`` and ``test``.
      sft_long_fraction: fraction of long sequences in ``sft``.
      label_noise: fraction of training pairs whose labels are exchanged.

    Returns:
      A :class:`PreferenceTask`.

    Example:
      >>> import feasjax as fj
      >>> task = fj.data.sorting_preferences(0, num_sft=8, num_train=20, num_test=4)
      >>> task.train["chosen"].shape, task.vocab_size, int(task.train["noisy"].sum())
      ((20, 19), 14, 1)
      >>> # BOS 3 8 5 0 SEP 0 3 5 8 EOS (digit d is token d + 4)
      >>> task.sft["tokens"][0, :11].tolist()
      [1, 7, 12, 9, 4, 2, 4, 7, 9, 12, 3]
    """
    for name, value in (("num_sft", num_sft), ("num_train", num_train), ("num_test", num_test)):
        _check(name, value, 1, np.inf, integer=True)
    _check("digits", digits, 2, 100, integer=True)
    for name, value in (("hard_fraction", hard_fraction), ("label_noise", label_noise),
                        ("sft_long_fraction", sft_long_fraction)):
        _check(name, value, 0.0, 1.0)
    for name, value in (("short", short), ("long", long)):
        if (len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                                   for v in value) or not 2 <= value[0] <= value[1]):
            raise ValueError(f"{name} must be (min, max) ints with 2 <= min <= max, got "
                             f"{name}={value!r}")
    rng = np.random.default_rng(seed)
    length = 2 * max(short[1], long[1]) + 3
    ks, _ = _lengths(rng, num_sft, short, long, sft_long_fraction)
    sft = [_sequence(x, np.sort(x), length) for x in (rng.integers(digits, size=k) for k in ks)]
    tokens, mask = (np.stack(parts) for parts in zip(*sft))
    common = dict(digits=digits, short=short, long=long, hard_fraction=hard_fraction,
                  length=length)
    return PreferenceTask({"tokens": tokens, "mask": mask},
                          _pairs(rng, num_train, noise=label_noise, **common),
                          _pairs(rng, num_test, noise=0.0, **common), digits + 4, length)
