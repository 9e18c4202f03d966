"""Record a tabular benchmark: train the selections of a space for real, store their curves.

    .venv/bin/python bench/record_table.py [--model minilm] [--out bench/tables/minilm-rotten_tomatoes-modules.parquet]
        [--space modules|layers] [--epochs 3] [--train-rows 4096] [--workers 1] [--threads 2] [--stop-after S]

    # the layer-granular table on a 2-core CPU, a sitting at a time:
    .venv/bin/python bench/record_table.py --space layers --train-rows 512 --eval-rows 640 --workers 2 \
        --threads 1 --out bench/tables/minilm-rotten_tomatoes-layers.parquet --stop-after 7200

`--space modules` (default) is the paper's module-wise study in full combinatorial form: one on/off
switch per module type (`query`, `key`, `value`, `attn.out`, `ffn.in`, `ffn.out`) across every
layer, and one for all LayerNorms (`norms`), so 2^7 = 128 selections for a BERT-like encoder.
`--space layers` has per layer `L.value`, `L.attn.out`, `L.ffn.out` and `L.norms` (24 switches for
MiniLM) and records `--selections` of them (`layer_selections`), `--repeats` of those also at seeds
1 and 2 (`repeat_plan`). The head is always trained, embeddings and pooler never. Each selection
trains with the fixed learning-rate rule by trainable fraction (`spaces.reference_lr`), with the
trials' own code (`trainables.TrialRun`) and search.run's defaults (the model's own pooling, the
head's learning-rate floor), and every epoch's validation metric, loss and seconds are recorded.

Resumable, in sittings: each finished selection is written to `OUT.parts/` at once, and a rerun
skips the selections already there; the table `OUT` is rebuilt from the parts every 10 trainings
and at the end, and a rerun restores missing parts from `OUT`, so the table alone (committed) is
what one sitting hands to the next. `--stop-after SECONDS` starts no training after that long
(those running finish). A CPU recording costs each epoch in its process's CPU seconds
(`epoch_cpu_seconds`, one thread per worker: other jobs on the machine, or a recording paused with
SIGSTOP, do not inflate it) and says so in the table's metadata (`cost_column`), which the
benchmarks read; a GPU recording's cost is its wall seconds (`epoch_seconds`).
`--space product` is search.run's own space (`--granularity`, switch values off/bias/all): the reference points
and `--selections` more from the product's spread start, each at every scale of `--lr-scales` times the size
rule's rate (the table's `lr_scale` column), for choosing `--lr-scale-range` (bench/rates_and_rungs.py).
With `--sample N` it also holds N selections for a surrogate (`product_sample`: most from the product's spread
start, a fifth uniform per switch as a sampler's random proposals), each at one scale drawn log-uniform from
`--sample-scales`, `--repeats` of them again at seed 1; `bench/search_efficiency.py` replays searches of the
product's own space on it (its metadata names the model, labels, pooling and granularity to rebuild the space).
`--workers K` trains K selections at once in separate processes (several per GPU on a GPU).
`--data FILE` records another task (a local file, `--text-column`/`--label-column`, split as search.run
splits it). `--save-data FILE` writes the tokenised data (`.npz`) and exits; `--data-cache FILE` trains
from such a file, for machines without the tokenizer or the dataset packages.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pyarrow as pa  # noqa: E402
import pyarrow.compute  # noqa: E402,F401  (pa.compute)
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from spaces import (  # noqa: E402
    WITHOUT_LORA,
    ArgumentParser,
    SpaceConfig,
    SubnetworkSpace,
    UsageError,
    describe_switches,
    load_taxonomy,
    reference_lr,
    resolve_model,
    resolve_pooling,
    run_cli,
)
from trainables import Encoded, TrialRun, TrialSettings  # noqa: E402

NORMS = "norms"
SCHEMA = pa.schema([
    ("selection", pa.string()), ("switches", pa.list_(pa.string())), ("units", pa.list_(pa.string())),
    ("trainable_params", pa.int64()), ("lr", pa.float64()), ("epoch", pa.int64()), ("metric", pa.float64()),
    ("metric_name", pa.string()), ("eval_loss", pa.float64()), ("train_loss", pa.float64()),
    ("epoch_seconds", pa.float64()), ("epoch_cpu_seconds", pa.float64()), ("train_rows", pa.int64()),
    ("eval_rows", pa.int64()), ("model", pa.string()),
    ("seed", pa.int64()), ("device", pa.string()), ("lr_scale", pa.float64()),
])


def module_switches(taxonomy) -> dict[str, tuple[str, ...]]:
    """Switch name -> unit ids: each non-norm module type across layers, and every LayerNorm together."""
    out = {m: tuple(u.id for u in taxonomy.units if u.module == m)
           for m in taxonomy.module_types if m not in taxonomy.norm_types}
    out[NORMS] = taxonomy.norm_units
    return {name: units for name, units in out.items() if units}


def selections(switch_units: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every subset of the switches, as tuples of switch names in switch order."""
    names = list(switch_units)
    return [tuple(n for n, on in zip(names, bits) if on) for bits in itertools.product((0, 1), repeat=len(names))]


LAYER_MODULES = ("value", "attn.out", "ffn.out")


def layer_switches(taxonomy) -> dict[str, tuple[str, ...]]:
    """Switch name -> unit ids, per layer: `L.value`, `L.attn.out`, `L.ffn.out` and `L.norms` (its LayerNorms)."""
    out = {}
    for layer in range(taxonomy.num_layers):
        for module in LAYER_MODULES:
            out[f"{layer}.{module}"] = tuple(u.id for u in taxonomy.units if u.layer == layer and u.module == module)
        out[f"{layer}.norms"] = tuple(u.id for u in taxonomy.units if u.layer == layer and taxonomy.is_norm(u))
    return {name: units for name, units in out.items() if units}


def layer_selections(switch_units: dict[str, tuple[str, ...]], params, count: int, seed: int = 0):
    """The layer-granular table's selections, in a fixed order: head only, everything, each switch alone,
    each single layer, each module type across layers, then selections drawn at random over parameter
    budgets (a budget log-uniform between the cheapest switch and everything; switches added in random
    order while they fit) until there are `count`. `params(selection)`: its trainable parameters."""
    import numpy as np

    names = list(switch_units)
    layers = sorted({n.split(".", 1)[0] for n in names}, key=int)
    kinds = list(dict.fromkeys(n.split(".", 1)[1] for n in names))
    chosen = [(), tuple(names), *((n,) for n in names),
              *(tuple(n for n in names if n.split(".", 1)[0] == layer) for layer in layers),
              *(tuple(n for n in names if n.split(".", 1)[1] == kind) for kind in kinds)]
    chosen = list(dict.fromkeys(chosen))
    rng = np.random.default_rng(seed)
    low, high = np.log(min(params((n,)) for n in names)), np.log(params(tuple(names)))
    seen = set(chosen)
    while len(chosen) < count:
        budget, picked = np.exp(rng.uniform(low, high)), []
        for i in rng.permutation(len(names)):
            if params(tuple(sorted([*picked, names[i]], key=names.index))) <= budget or not picked:
                picked.append(names[i])
        selection = tuple(sorted(picked, key=names.index))
        if selection not in seen:
            seen.add(selection)
            chosen.append(selection)
    return chosen


def repeat_plan(chosen: list[tuple[str, ...]], repeats: int, seeds=(1, 2), seed: int = 0) -> list[tuple]:
    """(selection, seed) pairs: every selection at seed 0, and `repeats` of them (head only and everything
    among them, the rest at random) again at each of `seeds`, so the table knows its seed noise."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    picked = chosen[:2] + [chosen[i] for i in rng.choice(np.arange(2, len(chosen)), max(0, repeats - 2),
                                                          replace=False)]
    return [(s, 0) for s in chosen] + [(s, k) for k in seeds for s in picked[:repeats]]


RATE_PRESETS = ("head", "layernorm", "bitfit", "value", "attn.out", "ffn.in", "full")


def product_plan(space, spread: int, scales: tuple[float, ...], seed: int = 0,
                 presets: tuple[str, ...] = RATE_PRESETS) -> list[tuple[dict, float]]:
    """The product-space table's trainings: (switch values, lr_scale) pairs over the product's own space
    (`space`, a `spaces.SubnetworkSpace`: its switches and switch values, e.g. off/bias/all per module type).
    The selections are the reference points of `presets` that the space has and `spread` more from
    the product's own spread start (`SubnetworkSpace.spread_points`: budgets log-uniform over the space,
    filled with random three-valued switches), each at every scale of `scales`; cheapest first."""
    seeds = space.seed_points()
    chosen = [seeds[name] for name in presets if name in seeds]
    for point in space.spread_points(spread + 2, seed):  # its first two are head only and everything
        if point not in chosen:
            chosen.append(point)
    chosen = chosen[: len([n for n in presets if n in seeds]) + spread]

    def size(point):
        return space.taxonomy.count(space.refs(point))

    values = [{k: v for k, v in point.items() if k != "lr_scale"} for point in sorted(chosen, key=size)]
    return [(point, scale) for point in values for scale in scales]


def product_sample(space, count: int, scale_range: tuple[float, float], repeats: int = 0, seed: int = 1,
                   uniform_share: float = 0.2) -> list[tuple[dict, float, int]]:
    """A product-space table for a surrogate: (switch values, lr_scale, training seed) triples over the product's
    own space (`space`, a `spaces.SubnetworkSpace`), each selection at ONE scale drawn log-uniform from
    `scale_range`, so that `count` trainings cover `count` selections and the scale as a continuous input.

    Most selections come from the product's spread start (`SubnetworkSpace.spread_points`: budgets
    log-uniform over the space, where small sub-networks and the front are); `uniform_share` of them are
    drawn uniformly per switch, as a sampler's random proposals are (mostly millions of parameters).
    `repeats` of the triples are also trained at seed 1, so the table knows its seed noise. Deterministic in
    `seed`; the same `count` and `seed` give the same first triples whatever `repeats` is."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spread = [{k: v for k, v in p.items() if k != "lr_scale"} for p in space.spread_points(count + 2, seed)]
    chosen: list[dict] = []
    seen: set = set()
    spread_iter = iter(spread)
    while len(chosen) < count:
        if rng.random() < uniform_share:
            values = space.fit_budget({name: str(rng.choice(space.values_of[name])) for name in space.switch_units})
        else:
            values = next(spread_iter, None)
            if values is None:  # a small space: its spread is used up
                break
        key = tuple(sorted(values.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(values)
    low, high = np.log(scale_range[0]), np.log(scale_range[1])
    scales = [float(f"{np.exp(rng.uniform(low, high)):.4g}") for _ in chosen]
    plan = [(values, scale, 0) for values, scale in zip(chosen, scales)]
    picked = rng.choice(len(plan), min(repeats, len(plan)), replace=False) if repeats else []
    return plan + [(plan[i][0], plan[i][1], 1) for i in sorted(picked)]


def part_name(selection: tuple[str, ...], seed: int = 0, lr_scale: float | None = None) -> str:
    key = json.dumps(selection) if seed == 0 else json.dumps([selection, seed])  # seed 0: the first tables' names
    if lr_scale is not None:
        key = json.dumps([selection, seed, lr_scale])
    return hashlib.sha1(key.encode()).hexdigest()[:16] + ".parquet"


_DATA: Encoded | None = None


def _init_worker(data_path: str, threads: int) -> None:
    global _DATA
    torch.set_num_threads(threads)
    _DATA = Encoded.load(data_path)


def train_selection(selection, units, lr, settings: TrialSettings, parts: str, device_name: str,
                    lr_scale: float | None = None) -> str:
    """Train one selection for `settings.max_epochs` epochs (at `settings.seed`) and write its rows as one part.
    `lr_scale`: the product-space table's scale of the size rule's rate (`lr` is already scaled)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = {"units": list(units), "lr": lr, **({} if lr_scale is None else {"lr_scale": lr_scale})}
    run = TrialRun.start(config, len(_DATA.train), settings, device)
    rows = []
    cpu = time.process_time()
    for result in run.epochs(_DATA, settings):
        now = time.process_time()
        cpu_seconds, cpu = now - cpu, now
        rows.append({
            "selection": " + ".join(selection) or "head only",
            "switches": list(selection),
            "units": list(units),
            "trainable_params": run.trainable_params,
            "lr": lr,
            "epoch": result["epoch"],
            "metric": result[settings.metric],
            "metric_name": settings.metric,
            "eval_loss": result["eval_loss"],
            "train_loss": result["train_loss"],
            "epoch_seconds": result["epoch_seconds"],
            "epoch_cpu_seconds": cpu_seconds,  # this process's CPU time: wall time less other jobs' share
            "train_rows": len(_DATA.train),
            "eval_rows": len(_DATA.validation),
            "model": Path(settings.model).name if os.sep in settings.model else settings.model,
            "seed": settings.seed,
            "device": device_name,
            "lr_scale": lr_scale,
        })
    path = Path(parts) / part_name(selection, settings.seed, lr_scale)
    temporary = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), temporary)
    temporary.replace(path)  # a part is there whole or not at all
    return rows[-1]["selection"] + ("" if lr_scale is None else f" @ lr_scale {lr_scale:g}")


def read_part(path: Path) -> pa.Table:
    """A part or table in SCHEMA; tables recorded before `epoch_cpu_seconds` existed get it empty."""
    table = pq.read_table(path)
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def devices(table: pa.Table) -> set[str]:
    """The kinds of device a table was recorded on: "cpu", "gpu" (a table holds one kind's costs)."""
    return {"cpu" if d.startswith("cpu") else "gpu" for d in table.column("device").to_pylist()}


def device_name(threads: int) -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({socket.gethostname()}, {threads} threads)"


def main(argv=None) -> int:
    return run_cli(lambda: record(argv))


def record(argv=None) -> int:
    from search.settings.options import add_run_options  # the options it shares with search.run, as search.run has them

    parser = ArgumentParser(prog="bench/record_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("modules", "layers", "product"), default="modules",
                        help="modules: every subset of the module-type switches (128 for BERT-like encoders); "
                        "layers: per layer value, attn.out, ffn.out and LayerNorms, --selections of them; "
                        "product: search.run's own space (--granularity, --switch-values), reference "
                        "points and --selections spread ones, each at every --lr-scales")
    # product: the space's granularity, values and ranks; the switch values without LoRA by default, as the
    # committed tables were recorded (add lora for LoRA)
    add_run_options(parser, "model", "granularity", "switch_values", "lora_ranks", "pooling", "lr_groups",
                    "text_column", "label_column", "max_length", "batch_size", switch_values=WITHOUT_LORA)
    parser.add_argument("--presets", default=None,
                        help="product: the reference points recorded, comma-separated (default: "
                        f"{','.join(RATE_PRESETS)}; with lora, e.g. lora.qv,lora.all-linear)")
    parser.add_argument("--lr-scales", default="0.1,0.3,1,3,10",
                        help="product: the scales of the size rule's rate each selection is trained at")
    parser.add_argument("--selections", type=int, default=600, help="layers: how many selections (default 600)")
    parser.add_argument("--repeats", type=int, default=30,
                        help="layers: selections also recorded at seeds 1 and 2 (default 30); product with "
                        "--sample: trainings also recorded at seed 1")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="product: N more selections for a surrogate (product_sample), each at one scale drawn "
                        "log-uniform from --sample-scales")
    parser.add_argument("--sample-scales", default="0.3,10", metavar="LOW,HIGH",
                        help="product --sample: the range of lr_scale drawn (default 0.3,10)")
    parser.add_argument("--data", help="a local text-classification file (CSV, JSON lines, Parquet) instead of "
                        "Rotten Tomatoes, split as search.run splits it")
    parser.add_argument("--out", default="bench/tables/minilm-rotten_tomatoes-modules.parquet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=4096)
    parser.add_argument("--eval-rows", type=int, default=None, help="default: the whole validation split")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker")
    parser.add_argument("--limit", type=int, default=None, help="record at most this many new selections")
    parser.add_argument("--stop-after", type=float, default=None, metavar="SECONDS",
                        help="start no training after this many seconds (those running finish; for sittings)")
    parser.add_argument("--prefix-cache", default=None,
                        help="folder where trainings share the frozen layers' outputs (default: none, so every "
                        "training pays for its own frozen prefix in its first epoch, as a lone trial does)")
    parser.add_argument("--data-cache", help="tokenised data from --save-data (skips the dataset and tokenizer)")
    parser.add_argument("--save-data", help="write the tokenised data to this .npz and exit")
    args = parser.parse_args(argv)

    if args.data_cache:
        data_path = args.data_cache
    else:
        from trainables import encode, load_task, load_tokenizer

        task, splits = load_task(data=args.data, text_column=args.text_column, label_column=args.label_column)
        data = encode(task, splits, load_tokenizer(args.model), args.max_length, args.train_rows, args.eval_rows)
        data_path = args.save_data or str(Path(args.out).with_suffix(".data.npz"))
        Path(data_path).parent.mkdir(parents=True, exist_ok=True)
        data.save(data_path)
        if args.save_data:
            print(f"wrote {data_path}: {len(data.train)} train, {len(data.validation)} validation rows")
            return 0
    data = Encoded.load(data_path)
    num_labels = int(max(data.train.labels.max(), data.validation.labels.max())) + 1

    pooling = resolve_pooling(args.pooling, resolve_model(args.model))
    taxonomy = load_taxonomy(args.model, num_labels, pooling)
    # What a search's trials do (search.run's defaults): the model's own pooling, the head's lr floor.
    settings = TrialSettings(model=args.model, num_labels=num_labels, max_epochs=args.epochs,
                             batch_size=args.batch_size, threads=args.threads, pooling=pooling,
                             lr_groups=args.lr_groups, cache_dir=args.prefix_cache)

    def params(selection) -> int:
        return taxonomy.count([u for name in selection for u in switch_units[name]])

    scales: dict[tuple, float] = {}  # product space: a selection's lr_scale, by (selection, scale) key
    if args.space == "product":
        space = SubnetworkSpace(taxonomy, SpaceConfig(
            granularity=args.granularity, values=args.switch_values, lora_ranks=args.lora_ranks,
            explicit_values=True))
        presets = tuple(args.presets.split(",")) if args.presets else RATE_PRESETS
        trainings = [(values, scale, 0) for values, scale in
                     product_plan(space, args.selections, tuple(float(x) for x in args.lr_scales.split(",")),
                                  presets=presets)]
        if args.sample:
            try:
                low, high = (float(x) for x in args.sample_scales.split(","))
            except ValueError:
                raise UsageError(f"--sample-scales takes LOW,HIGH, not '{args.sample_scales}'") from None
            if not 0 < low <= high:
                raise UsageError(f"--sample-scales {args.sample_scales}: need 0 < LOW <= HIGH")
            trainings += product_sample(space, args.sample, (low, high), args.repeats)
        # A training's key: its switches as the table names them (`query`, `attn.norm:bias`), then `@scale`.
        switch_units, plan = {}, []
        for values, scale, seed in trainings:
            on = {name + ("" if v == "all" else f":{v}"): space.refs({name: v})
                  for name, v in values.items() if v != "off"}
            switch_units.update({name: tuple(refs) for name, refs in on.items()})
            key = (*on, f"@{scale:g}")
            scales[key] = scale
            switch_units[key[-1]] = ()
            plan.append((key, seed))
        print(f"product space: {describe_switches({n: 'all' for n in space.switch_units})}; values "
              f"{'/'.join(space.config.values)}", flush=True)
    elif args.space == "modules":
        switch_units = module_switches(taxonomy)
        plan = [(s, 0) for s in selections(switch_units)]
    else:
        switch_units = layer_switches(taxonomy)
        plan = repeat_plan(layer_selections(switch_units, params, args.selections), args.repeats)
    extra = {"granularity": args.granularity} if args.space == "product" else {}
    parts = Path(str(args.out) + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    restored = restore_parts(Path(args.out), parts, settings, len(data.train), len(data.validation),
                             device_name(args.threads))
    if restored:
        print(f"{restored} trainings restored from {args.out}", flush=True)
    todo = [(s, k) for s, k in plan
            if not (parts / (part_name(s, k) if s not in scales else part_name(s[:-1], k, scales[s]))).exists()]
    if args.space == "modules":
        todo.sort(key=lambda item: -params(item[0]))  # longest first: the pool's tail is short
    todo = todo[: args.limit]
    print(f"{len(plan)} trainings over {len(switch_units)} switches ({', '.join(list(switch_units)[:8])}, ...); "
          f"{len(todo)} to record with {args.workers} worker(s) on {device_name(args.threads)}", flush=True)

    started = time.perf_counter()
    where = device_name(args.threads)
    context = multiprocessing.get_context("spawn")
    pending = iter(todo)
    try:
        with concurrent.futures.ProcessPoolExecutor(args.workers, context, _init_worker,
                                                    (data_path, args.threads)) as pool:

            def submit() -> concurrent.futures.Future | None:
                if args.stop_after is not None and time.perf_counter() - started > args.stop_after:
                    return None
                selection, seed = next(pending, (None, None))
                if selection is None:
                    return None
                units = [u for name in selection for u in switch_units[name]]
                scale = scales.get(selection)
                lr = reference_lr(taxonomy.count(units), taxonomy.total_params) * (scale or 1.0)
                return pool.submit(train_selection, selection if scale is None else selection[:-1], units, lr,
                                   dataclasses.replace(settings, seed=seed), str(parts), where, scale)

            # As many in flight as workers (a stopped recording leaves no queue behind), the table rebuilt
            # every `REBUILD_EVERY` trainings, so what is recorded so far is one file at any time.
            running = {f for f in (submit() for _ in range(args.workers)) if f is not None}
            done = 0
            while running:
                finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    done += 1
                    print(f"[{done}/{len(todo)} {time.perf_counter() - started:.0f}s] {future.result()}", flush=True)
                    if (following := submit()) is not None:
                        running.add(following)
                    if done % REBUILD_EVERY == 0:
                        write_table(parts, args.out, args.epochs, data, taxonomy, extra, quiet=True)
    finally:
        write_table(parts, args.out, args.epochs, data, taxonomy, extra)
    return 0


REBUILD_EVERY = 10


def write_table(parts: Path, out: str, epochs: int, data: Encoded, taxonomy, extra: dict | None = None,
                quiet: bool = False) -> None:
    """The table `out`, from every part: sorted, with what a benchmark needs for a fixed hypervolume
    reference point (the majority metric, all parameters) and to rebuild the space (the model, its labels and
    pooling, and `extra`: a product table's granularity) in its metadata; replaced atomically."""
    tables = [read_part(p) for p in sorted(parts.glob("*.parquet"))]
    if not tables:
        return
    table = pa.concat_tables(tables).sort_by([("trainable_params", "ascending"), ("selection", "ascending"),
                                              ("lr_scale", "ascending"), ("seed", "ascending"), ("epoch", "ascending")])
    # A trial's cost: on a GPU its wall seconds; on a CPU its process seconds (one thread per worker),
    # which other jobs sharing the machine during a long recording do not inflate.
    on_cpu = devices(table) == {"cpu"} and not table.column("epoch_cpu_seconds").null_count
    table = table.replace_schema_metadata({"majority_metric": str(data.baseline("accuracy")),
                                           "total_params": str(taxonomy.total_params),
                                           "cost_column": "epoch_cpu_seconds" if on_cpu else "epoch_seconds",
                                           "model": taxonomy.name, "num_labels": str(taxonomy.num_labels),
                                           "pooling": taxonomy.pooling, **(extra or {})})
    temporary = Path(f"{out}.tmp")
    pq.write_table(table, temporary)
    temporary.replace(out)
    if not quiet:
        print(f"wrote {out}: {table.num_rows // epochs} trainings x {epochs} epochs")


def restore_parts(out: Path, parts: Path, settings: TrialSettings, train_rows: int, eval_rows: int,
                  where: str) -> int:
    """Write the trainings of an earlier table `out` that `parts` lacks back as parts, so a recording
    continues from the table alone (the table is what is kept between sittings, the parts are not).
    A table recorded with other rows or epochs, or on another kind of device (`where`: this one), is
    refused: its curves or its costs would not be comparable."""
    if not out.exists():
        return 0
    table = read_part(out)
    recorded = {(r["train_rows"], r["eval_rows"]) for r in table.select(["train_rows", "eval_rows"]).to_pylist()}
    epochs = set(table.column("epoch").to_pylist())
    if recorded != {(train_rows, eval_rows)} or max(epochs) != settings.max_epochs:
        raise UsageError(f"{out} was recorded with (train rows, eval rows) {sorted(recorded)} and {max(epochs)} "
                         f"epochs, not ({train_rows}, {eval_rows}) and {settings.max_epochs}: "
                         "give the same --train-rows/--eval-rows/--epochs, or another --out")
    recorded_on = devices(table)
    if recorded_on != {"cpu" if where.startswith("cpu") else "gpu"}:
        kind = {frozenset({"cpu"}): "a CPU", frozenset({"gpu"}): "a GPU"}.get(frozenset(recorded_on), "mixed devices")
        raise UsageError(f"{out} was recorded on {kind}, this is {where}: one table holds the costs of "
                         "one kind of device; give another --out")
    restored = 0
    for group in table.group_by(["selection", "seed", "lr_scale"]).aggregate([]).to_pylist():
        same_scale = (pa.compute.is_null(pa.compute.field("lr_scale")) if group["lr_scale"] is None
                      else pa.compute.field("lr_scale") == group["lr_scale"])
        rows = table.filter((pa.compute.field("selection") == group["selection"])
                            & (pa.compute.field("seed") == group["seed"]) & same_scale)
        path = parts / part_name(tuple(rows.column("switches")[0].as_py()), group["seed"], group["lr_scale"])
        if not path.exists():
            pq.write_table(rows, path)
            restored += 1
    return restored


if __name__ == "__main__":
    sys.exit(main())
