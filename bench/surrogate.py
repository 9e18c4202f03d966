"""A surrogate benchmark from a recorded table, as YAHPO Gym and NAS-Bench-301 build theirs.

    .venv/bin/python bench/surrogate.py TABLE [--folds 5] [--out bench/results] [--against OTHER_TABLE]

A table recorded over a large space (`bench/record_table.py --space layers`: 24 switches, 2^24
sub-networks) holds a few hundred of them. The surrogate answers for any other: per epoch, a
scikit-learn random forest predicts the validation metric, and another the epoch's seconds, from
the switch bits and log10 of the trainable parameters (known before a sub-network trains).

Validated on held-out sub-networks (K-fold over selections, seed 0): Spearman rank correlation and
mean absolute error of the final-epoch metric, next to the seed noise measured by the table's
repeats (the same selections at seeds 1 and 2): the standard deviation over seeds, and the rank
correlation between two seeds. A surrogate is good enough when its error is near the seed noise.
`--against OTHER_TABLE` compares the final metrics of the (selection, seed) pairs both tables hold,
for the same data recorded on another device (a GPU's bf16 against a CPU's float32): the mean and
standard deviation of the differences and their rank correlation, next to the seed noise.
`bench/search_efficiency.py --surrogate` replays searches on it. Writes NAME.surrogate.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from spaces import ArgumentParser, UsageError, run_cli  # noqa: E402

NEEDED = ("switches", "trainable_params", "epoch", "metric", "epoch_seconds")


TREES = 300


def _forest(seed: int, trees: int = TREES) -> RandomForestRegressor:
    return RandomForestRegressor(n_estimators=trees, min_samples_leaf=2, max_features=0.5, random_state=seed, n_jobs=1)


class FlatForest:
    """A fitted forest's trees as padded arrays, walked all at once for one row: the same predictions as
    `forest.predict` (tested), without its per-tree call overhead (about 40 ms per row and forest
    here), which a replayed search, asking for hundreds of sub-networks one at a time, pays many times."""

    def __init__(self, forest: RandomForestRegressor):
        trees = [estimator.tree_ for estimator in forest.estimators_]
        if trees[0].value.shape[1:] != (1, 1):
            raise ValueError("FlatForest takes single-output forests")
        width = max(t.node_count for t in trees)

        def padded(get, fill, dtype) -> np.ndarray:
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, : t.node_count] = get(t)
            return out

        self.left = padded(lambda t: t.children_left, -1, np.int64)
        self.right = padded(lambda t: t.children_right, -1, np.int64)
        self.feature = padded(lambda t: np.maximum(t.feature, 0), 0, np.int64)  # leaves say -2
        self.threshold = padded(lambda t: t.threshold, 0.0, np.float64)
        self.value = padded(lambda t: t.value[:, 0, 0], 0.0, np.float64)
        self.rows = np.arange(len(trees))

    def predict_one(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float32)  # as sklearn's trees compare: float32 features
        node = np.zeros(len(self.rows), dtype=np.int64)
        while True:
            inner = self.left[self.rows, node] != -1
            if not inner.any():
                return float(self.value[self.rows, node].mean())
            go_left = x[self.feature[self.rows, node]] <= self.threshold[self.rows, node]
            step = np.where(go_left, self.left[self.rows, node], self.right[self.rows, node])
            node = np.where(inner, step, node)


class Surrogate:
    """Per-epoch models of a table's metric, seconds and (where every entry has one) loss over its switches.

    `scaled` (a product-space table, `record_table.py --space product`): a key is (selection, lr_scale), and
    log10 of the learning-rate scale is one more input, so any scale between the recorded ones is answered."""

    def __init__(self, switches: list[str], epochs: int, seed: int = 0, trees: int = TREES, scaled: bool = False):
        self.switches, self.epochs, self.seed, self.trees = list(switches), epochs, seed, trees
        self.scaled = scaled
        self.metric_models: dict[int, FlatForest] = {}
        self.seconds_models: dict[int, FlatForest] = {}
        self.loss_models: dict[int, FlatForest] = {}

    def features(self, keys, params) -> np.ndarray:
        index = {s: i for i, s in enumerate(self.switches)}
        bits = np.zeros((len(keys), len(self.switches)))
        for row, key in enumerate(keys):
            for s in (key[0] if self.scaled else key):
                bits[row, index[s]] = 1.0
        columns = [bits, np.log10(np.asarray(params, dtype=float))]
        if self.scaled:
            columns.append(np.log10(np.asarray([key[1] for key in keys], dtype=float)))
        return np.column_stack(columns)

    def fit(self, curves: dict[frozenset, dict]) -> Surrogate:
        """`curves`: selection -> {"params": int, "curve": {epoch: (metric, seconds)}, "loss": {epoch: loss}};
        the loss is optional, and modelled only where every selection has it for every epoch."""
        keys = list(curves)
        x = self.features(keys, [curves[k]["params"] for k in keys])
        with_loss = all(len(curves[k].get("loss", {})) >= self.epochs for k in keys)
        for epoch in range(1, self.epochs + 1):
            metric = [curves[k]["curve"][epoch][0] for k in keys]
            seconds = [curves[k]["curve"][epoch][1] for k in keys]
            self.metric_models[epoch] = FlatForest(_forest(self.seed, self.trees).fit(x, metric))
            self.seconds_models[epoch] = FlatForest(_forest(self.seed, self.trees).fit(x, seconds))
            if with_loss:
                loss = [curves[k]["loss"][epoch] for k in keys]
                self.loss_models[epoch] = FlatForest(_forest(self.seed, self.trees).fit(x, loss))
        return self

    def curve(self, selection, params: int) -> dict[int, tuple[float, float]]:
        x = self.features([selection], [params])[0]
        return {e: (self.metric_models[e].predict_one(x), max(self.seconds_models[e].predict_one(x), 0.0))
                for e in range(1, self.epochs + 1)}

    def loss(self, selection, params: int) -> dict[int, float]:
        """Each epoch's predicted validation loss; empty when the table had none to learn from."""
        x = self.features([selection], [params])[0]
        return {e: model.predict_one(x) for e, model in self.loss_models.items()}


COST = "epoch_seconds"


def read_table(path: str, needed: tuple[str, ...]) -> tuple[list[dict], dict[str, str], list[str]]:
    """A recorded table's rows, its metadata and its switches in the recorder's order; bad input is a UsageError.

    Each row's `cost` is the epoch's compute in seconds: the column the table's metadata names as
    `cost_column` (a CPU recording's process seconds, which other jobs on the machine do not inflate),
    else `epoch_seconds`."""
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read table {path}: {exc}") from None
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise UsageError(f"table {path} lacks column(s) {', '.join(missing)} (needs {', '.join(needed)})")
    rows = table.to_pylist()
    if not rows:
        raise UsageError(f"table {path} has no rows")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    cost = meta.get("cost_column", COST)
    if cost not in table.column_names or table.column(cost).null_count:
        raise UsageError(f"table {path}: its cost column {cost} is missing or has empty rows")
    for r in rows:
        r["cost"] = r[cost]
    longest = max((r["switches"] for r in rows), key=len)
    return rows, meta, list(dict.fromkeys([*longest, *(s for r in rows for s in r["switches"])]))


def scale_key(scale: float) -> float:
    """A learning-rate scale as a key: 4 significant digits, as the recorder names them."""
    return float(f"{scale:.4g}")


def is_scaled(rows: list[dict]) -> bool:
    """A product-space table: every row says the learning-rate scale it trained at."""
    return all(r.get("lr_scale") is not None for r in rows)


def read_curves(path: str) -> tuple[list[str], int, dict[int, dict], bool]:
    """The table's switches, epochs, per seed: key -> params, curve and loss, and whether it is scaled (a key is
    then (selection, lr_scale), else the selection)."""
    rows, _, switches = read_table(path, NEEDED)
    epochs = max(r["epoch"] for r in rows)
    scaled = is_scaled(rows)
    by_seed: dict[int, dict] = {}
    for r in rows:
        key = (frozenset(r["switches"]), scale_key(r["lr_scale"])) if scaled else frozenset(r["switches"])
        entry = by_seed.setdefault(int(r.get("seed") or 0), {}).setdefault(
            key, {"params": int(r["trainable_params"]), "curve": {}})
        entry["curve"][int(r["epoch"])] = (float(r["metric"]), float(r["cost"]))
        if r.get("eval_loss") is not None:
            entry.setdefault("loss", {})[int(r["epoch"])] = float(r["eval_loss"])
    return switches, epochs, by_seed, scaled


def seed_noise(by_seed: dict[int, dict[frozenset, dict]], epochs: int) -> dict:
    """What the table's repeats say: the final metric's standard deviation over seeds, and the rank
    correlation between two seeds' final metrics over the repeated selections."""
    repeated = [k for k in by_seed.get(0, {}) if sum(k in by_seed[s] for s in by_seed) >= 2]
    if not repeated:
        return {"repeated": 0, "std": None, "spearman_between_seeds": None}
    finals = [[by_seed[s][k]["curve"][epochs][0] for s in sorted(by_seed) if k in by_seed[s]] for k in repeated]
    others = [s for s in sorted(by_seed) if s != 0]
    pairs = [(by_seed[0][k]["curve"][epochs][0], by_seed[others[0]][k]["curve"][epochs][0])
             for k in repeated if k in by_seed[others[0]]]
    return {"repeated": len(repeated), "std": float(np.mean([np.std(f, ddof=1) for f in finals])),
            "spearman_between_seeds": float(spearmanr(*zip(*pairs)).statistic) if len(pairs) > 2 else None}


def agreement(by_seed: dict[int, dict[frozenset, dict]], other: dict[int, dict[frozenset, dict]], epochs: int) -> dict:
    """The final metrics of the (selection, seed) pairs two recordings share: differences and rank correlation."""
    pairs = [(entry["curve"][epochs][0], other[seed][key]["curve"][epochs][0])
             for seed, entries in by_seed.items() for key, entry in entries.items() if key in other.get(seed, {})]
    if len(pairs) < 3:
        raise UsageError(f"the two tables share {len(pairs)} trainings: too few to compare")
    mine, theirs = np.array(pairs).T
    return {"shared": len(pairs), "mean_difference": float(np.mean(mine - theirs)),
            "std_difference": float(np.std(mine - theirs, ddof=1)),
            "spearman": float(spearmanr(mine, theirs).statistic)}


def validate(switches: list[str], epochs: int, curves: dict, folds: int = 5, seed: int = 0,
             trees: int = TREES, scaled: bool = False) -> dict:
    """K-fold over selections: the final metric predicted for held-out sub-networks vs recorded. Scaled, a
    selection's every scale is held out together (the fold never saw the sub-network)."""
    keys = list(curves)
    selections = list(dict.fromkeys(k[0] if scaled else k for k in keys))
    if len(selections) < 2 * folds:
        raise UsageError(f"{len(selections)} sub-networks are too few for {folds}-fold validation")
    predicted, recorded, seconds_error = np.zeros(len(keys)), np.zeros(len(keys)), []
    for _, held in KFold(folds, shuffle=True, random_state=seed).split(selections):
        held_out = {selections[i] for i in held}
        test = [i for i, k in enumerate(keys) if (k[0] if scaled else k) in held_out]
        train = [i for i in range(len(keys)) if i not in set(test)]
        model = Surrogate(switches, epochs, seed, trees, scaled).fit({keys[i]: curves[keys[i]] for i in train})
        for i in test:
            curve = model.curve(keys[i], curves[keys[i]]["params"])
            predicted[i], recorded[i] = curve[epochs][0], curves[keys[i]]["curve"][epochs][0]
            seconds_error.append(abs(curve[epochs][1] - curves[keys[i]]["curve"][epochs][1]))
    return {"folds": folds, "sub_networks": len(selections), "trainings": len(keys),
            "spearman": float(spearmanr(predicted, recorded).statistic),
            "mae": float(np.mean(np.abs(predicted - recorded))),
            "seconds_mae": float(np.mean(seconds_error)), "recorded_std": float(np.std(recorded))}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="bench/surrogate.py", description=__doc__.splitlines()[0])
    parser.add_argument("table")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trees", type=int, default=TREES, help=f"trees per random forest (default {TREES})")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--against", metavar="OTHER_TABLE",
                        help="the same data recorded elsewhere: compare the trainings both tables hold")

    def body() -> int:
        args = parser.parse_args(argv)
        switches, epochs, by_seed, scaled = read_curves(args.table)
        report = {"table": args.table, "switches": len(switches), "epochs": epochs, "scaled": scaled,
                  "validation": validate(switches, epochs, by_seed[min(by_seed)], args.folds, trees=args.trees,
                                         scaled=scaled),
                  "seed_noise": seed_noise(by_seed, epochs)}
        if args.against:
            other_switches, other_epochs, other, _ = read_curves(args.against)
            if other_epochs != epochs or set(other_switches) - set(switches):
                raise UsageError(f"{args.against} is not a recording of {args.table}'s space and epochs")
            report["against"] = {"table": args.against, **agreement(by_seed, other, epochs)}
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{Path(args.table).stem}.surrogate.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        v, n = report["validation"], report["seed_noise"]
        print(f"{args.table}: {v['sub_networks']} sub-networks, {len(switches)} switches, {epochs} epochs")
        print(f"held-out ({v['folds']}-fold) final metric: Spearman {v['spearman']:.3f}, MAE {v['mae']:.4f} "
              f"(spread of the recorded finals {v['recorded_std']:.4f}); epoch seconds MAE {v['seconds_mae']:.2f}")
        if n["repeated"]:
            between = n["spearman_between_seeds"]
            print(f"seed noise over {n['repeated']} repeated sub-networks: std {n['std']:.4f}, Spearman between "
                  f"two seeds {'-' if between is None else f'{between:.3f}'}")
        else:
            print("no repeated sub-networks: the seed noise is unknown")
        if args.against:
            a = report["against"]
            print(f"against {args.against}: {a['shared']} shared trainings, final metric difference mean "
                  f"{a['mean_difference']:+.4f}, std {a['std_difference']:.4f}, Spearman {a['spearman']:.3f}")
        print(f"wrote {path}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
