"""Batches with dynamic padding: each batch is cut to its own longest row."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from trainables._data import Split

# Rows are sorted by length inside windows of this many batches, so batches hold rows of
# similar length (less padding) while the order across windows stays random.
BUCKET_WINDOW = 32


def _batch(split: Split, rows: np.ndarray, inputs: frozenset[str] | None) -> dict[str, torch.Tensor]:
    longest = int(split.lengths[rows].max())
    input_ids = torch.from_numpy(split.input_ids[rows, :longest].astype(np.int64))
    positions = torch.arange(longest)
    batch = {
        "input_ids": input_ids,
        "attention_mask": (positions[None, :] < torch.from_numpy(split.lengths[rows])[:, None]).long(),
        "labels": torch.from_numpy(split.labels[rows]),
    }
    if split.token_type_ids is not None and (inputs is None or "token_type_ids" in inputs):
        batch["token_type_ids"] = torch.from_numpy(split.token_type_ids[rows, :longest].astype(np.int64))
    return batch


def train_batches(
    split: Split, batch_size: int, seed: int, inputs: frozenset[str] | None = None
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Shuffled, length-bucketed batches, as (row indices, batch) pairs; the same `seed` gives the same batches.

    `inputs`: the names the model's forward accepts; other fields are left out.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))
    window = batch_size * BUCKET_WINDOW
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(split.lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    for index in rng.permutation(len(batches)):
        yield batches[index], _batch(split, batches[index], inputs)


def eval_batches(split: Split, batch_size: int, inputs: frozenset[str] | None = None):
    """Batches in length order (least padding); predictions are put back in row order by the caller."""
    order = np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, _batch(split, rows, inputs)
