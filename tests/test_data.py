import numpy as np
import pytest
from conftest import make_text_file

from spaces import UsageError
from trainables import encode, eval_batches, load_task, load_tokenizer, train_batches


def test_rotten_tomatoes_split_is_fixed():
    task, splits = load_task()
    assert task.label_names == ("fresh", "rotten") and task.metric == "accuracy"
    assert sum(len(s) for s in splits.values()) == 12_752
    assert len(splits["validation"]) == pytest.approx(1275, abs=1) and len(splits["test"]) == pytest.approx(1275, abs=1)
    _, again = load_task()
    assert list(splits["validation"]["text"][:5]) == list(again["validation"]["text"][:5])
    assert not set(splits["train"]["text"]) & set(splits["test"]["text"])


def test_splits_are_those_of_datasets_own_train_test_split():
    """trainables.train_test_split reads the labels at once and draws the rows `datasets` draws: the same
    indices for Rotten Tomatoes' fixed split and for many classes, uneven classes, a regression and a count."""
    from datasets import ClassLabel, Dataset, Features, Value

    from trainables import SPLIT_SEED, rotten_tomatoes_frame, train_test_split

    def theirs(dataset, test_size, stratify):
        parts = dataset.train_test_split(test_size=test_size, seed=SPLIT_SEED,
                                         **({"stratify_by_column": "label"} if stratify else {}))
        return parts["train"]["text"], parts["test"]["text"]

    def ours(dataset, test_size, stratify):
        train, test = train_test_split(dataset, test_size, stratify)
        return dataset.select(train)["text"], dataset.select(test)["text"]

    frame = rotten_tomatoes_frame()
    rng = np.random.default_rng(1)
    labels = rng.choice(5, size=997, p=[0.5, 0.3, 0.1, 0.07, 0.03])
    cases = [(frame["text"].tolist(), frame["label"].tolist(), sorted(frame["label"].unique())),
             ([f"row {i}" for i in range(997)], labels.tolist(), [str(k) for k in range(5)]),
             ([f"row {i}" for i in range(300)], rng.normal(size=300).tolist(), None)]
    for texts, y, names in cases:
        label = ClassLabel(names=names) if names else Value("float32")
        dataset = Dataset.from_dict({"text": texts, "label": y},
                                    features=Features({"text": Value("string"), "label": label}))
        subset = dataset.select(range(0, len(dataset), 2))  # with an indices mapping, as a second split has
        for data in (dataset, subset):
            for size in (0.2, 0.5, 37):
                assert ours(data, size, names is not None) == theirs(data, size, names is not None)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_local_files_with_string_labels(tmp_path, suffix):
    path = make_text_file(tmp_path / f"d{suffix}", rows=60, classes=("a", "b", "c"))
    task, splits = load_task(data=path, text_column="review", label_column="sentiment")
    assert task.label_names == ("a", "b", "c") and task.num_labels == 3 and task.name == "d"
    assert sum(len(s) for s in splits.values()) == 60


def test_encode_and_dynamic_padding(text_csv, tiny_bert):
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(tiny_bert), max_length=16, train_size=50, eval_size=10)
    assert len(data.train) == 50 and len(data.validation) == 10
    assert data.train.input_ids.shape[1] <= 16
    seen = []
    for _, batch in train_batches(data.train, 8, seed=1):
        longest = batch["attention_mask"].sum(1).max().item()
        assert batch["input_ids"].shape[1] == longest  # cut to its own longest row
        seen.extend(batch["labels"].tolist())
    assert sorted(seen) == sorted(data.train.labels.tolist())
    rows = np.concatenate([r for r, _ in eval_batches(data.validation, 4)])
    assert sorted(rows.tolist()) == list(range(10))
    assert 0 < data.baseline("accuracy") <= 1 and data.baseline("matthews_correlation") == 0


def test_tokenize_pairs(tmp_path, tiny_bert):
    import pandas as pd

    frame = pd.DataFrame({"a": ["x y"] * 100, "b": ["z"] * 100, "y": [0, 1] * 50})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    task, splits = load_task(data=tmp_path / "pairs.csv", text_column="a", text_pair_column="b", label_column="y")
    data = encode(task, splits, load_tokenizer(tiny_bert))
    assert data.train.token_type_ids is not None and data.train.token_type_ids.max() == 1


@pytest.mark.parametrize("content, kwargs, message", [
    ("review,sentiment\n", {}, "no rows"),
    ("review,sentiment\n" + "good film,pos\n" * 30, {}, "one class"),
    ("text,label\nx,1\n", {}, "column 'review' not in data"),
    ("review,sentiment\n" + "a,pos\nb,neg\n" * 3, {}, "at least 20"),
    ("review,sentiment\n" + "a,pos\n" * 39 + "b,neg\n", {}, "only 1 row.s.: at least 2 of each"),
])
def test_bad_data(tmp_path, content, kwargs, message):
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(UsageError, match=message):
        load_task(data=tmp_path / "bad.csv", text_column="review", label_column="sentiment", **kwargs)


def test_file_that_is_not_what_it_says(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet at all")
    with pytest.raises(UsageError, match="cannot read"):
        load_task(data=tmp_path / "bad.parquet")
    with pytest.raises(UsageError, match="unsupported data file"):
        load_task(data=make_text_file(tmp_path / "x.csv").rename(tmp_path / "x.xlsx"))
    with pytest.raises(UsageError, match="unknown task"):
        load_task("sst9")
    with pytest.raises(UsageError, match="did you mean 'rotten_tomatoes'"):
        load_task("rotten_tomato")
