"""`python -m search.report RUN_DIR`: one self-contained HTML report of a run, and a PNG of each figure.

Written at the end of every run too. Opens offline: figures are embedded (PNG as data URIs, the
Pareto front as inline SVG whose points show their details on hover), and there is no script.

- the Pareto front: every trial faded, the frontier drawn, the reference points labelled;
- the winning-ticket map: layers x module types, the share of frontier points that train each
  unit, and the mean metric of finished trials with it minus without it;
- hypervolume over compute (trial-epochs) and over wall time: how the search converged;
- learning curves: the frontier's in colour, the others faded, an x where early stopping cut one;
- the paper's explanation: mean absolute pre-trained weight of each module type next to the
  metric that module type reaches alone (its reference point);
- the frontier's trials, their units and the command that exports each.
"""

from __future__ import annotations

if __name__ == "__main__":  # before anything imports transformers (see search._hub)
    from search._hub import start_cli

    start_cli()

import base64
import html
import io
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from search._pareto import hypervolume
from search._results import (
    COMPLETED,
    FRONTIER_FILE,
    RUN_FILE,
    STOPPED,
    TRIALS_FILE,
    final_rows,
    frontier,
    read_trials,
)
from search._storage import RunLocation
from spaces import ArgumentParser, UsageError, load_taxonomy

REPORT_FILE = "report.html"
FIGURES = ("pareto", "ticket_map", "hypervolume", "learning_curves", "weights")


# ---- the figures' data -------------------------------------------------------------------------

def unit_of(ref: str) -> str:
    """`3.value:bias` -> `3.value`."""
    return ref.split(":", 1)[0]


def ticket_map(frame: pd.DataFrame, taxonomy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(share, effect), each layers x module types: the share of frontier points that train a unit
    (a bias-only selection counts), and the mean final metric of completed trials training it minus
    that of those that do not (NaN where every or no trial trains it)."""
    front = frontier(frame)
    done = final_rows(frame)
    done = done[(done["status"] == COMPLETED) & done["metric"].notna()]
    layers, modules = range(taxonomy.num_layers), taxonomy.module_types
    share = pd.DataFrame(0.0, index=list(layers), columns=list(modules))
    effect = pd.DataFrame(np.nan, index=list(layers), columns=list(modules))
    front_units = [{unit_of(r) for r in units} for units in front["units"]]
    done_units = [{unit_of(r) for r in units} for units in done["units"]]
    for layer in layers:
        for module in modules:
            unit = f"{layer}.{module}"
            if front_units:
                share.loc[layer, module] = sum(unit in u for u in front_units) / len(front_units)
            has = np.array([unit in u for u in done_units], dtype=bool)
            if has.any() and (~has).any():
                metric = done["metric"].to_numpy()
                effect.loc[layer, module] = metric[has].mean() - metric[~has].mean()
    return share, effect


def hypervolume_curve(frame: pd.DataFrame, reference: tuple[float, float], max_epochs: int) -> pd.DataFrame:
    """After each reported epoch (in report order): trial-epochs so far, seconds since the first
    report, and the hypervolume of the trials that had reached the full budget by then."""
    rows = frame.dropna(subset=["metric"]).sort_values(["timestamp", "trial_id", "epoch"], kind="stable")
    start = rows["timestamp"].min()
    metric, params, out = [], [], []
    for i, row in enumerate(rows.itertuples(), 1):
        if row.epoch >= max_epochs:
            metric.append(row.metric)
            params.append(row.trainable_params)
        hv = hypervolume(metric, params, reference) if metric else 0.0
        out.append({"trial_epochs": i, "seconds": row.timestamp - start, "hypervolume": hv})
    return pd.DataFrame(out, columns=["trial_epochs", "seconds", "hypervolume"])


def weight_magnitudes(model: str, num_labels: int, taxonomy) -> pd.Series:
    """Mean absolute pre-trained weight of each module type (its weight matrices/vectors, all layers)."""
    from trainables import load_model

    network, _ = load_model(model, num_labels, taxonomy.pooling)
    params = dict(network.named_parameters())
    out = {}
    for module in taxonomy.module_types:
        values = [params[n].detach().abs().flatten() for u in taxonomy.units if u.module == module
                  for n in u.params if n.endswith("weight")]
        if values:
            out[module] = float(np.mean(np.concatenate([v.numpy() for v in values])))
    return pd.Series(out, name="mean_abs_weight")


def module_transfer(frame: pd.DataFrame, taxonomy) -> pd.Series:
    """Final metric of each module type's reference point (trained alone), mean over its trials."""
    done = final_rows(frame)
    done = done[(done["status"] == COMPLETED) & done["preset"].isin(taxonomy.module_types)]
    return done.groupby("preset")["metric"].mean().rename("metric_alone")


# ---- figures -----------------------------------------------------------------------------------

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def _figures(frame, run, taxonomy, reference, weights, transfer) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from search._plots import pareto_plot

    metric, max_epochs = run["metric"], run["max_epochs"]
    out = {}
    buffer_path = io.BytesIO()
    pareto_plot(frame, buffer_path, metric, f"{Path(run['model']).name} on {run['task']}", reference[0])
    out["pareto"] = buffer_path.getvalue()

    share, effect = ticket_map(frame, taxonomy)
    fig, ax = plt.subplots(figsize=(1.1 * len(share.columns) + 2, 0.45 * len(share) + 1.8))
    image = ax.imshow(share.to_numpy(), cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(effect.to_numpy()):
        if not math.isnan(value):
            ax.text(j, i, f"{value:+.3f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(share.columns)), share.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(share)), [f"layer {i}" for i in share.index])
    ax.set_title(f"share of frontier points training each unit (colour); {metric} with it - without (text)",
                 fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    out["ticket_map"] = _png(fig)

    curve = hypervolume_curve(frame, reference, max_epochs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    axes[0].step(curve["trial_epochs"], curve["hypervolume"], where="post")
    axes[0].set_xlabel("compute (trial-epochs reported)")
    axes[1].step(curve["seconds"] / 60, curve["hypervolume"], where="post")
    axes[1].set_xlabel("wall time (minutes since the first report)")
    axes[0].set_ylabel("hypervolume of full-budget trials")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out["hypervolume"] = _png(fig)

    front_ids = set(frontier(frame)["trial_id"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for trial_id, rows in frame.dropna(subset=["metric"]).groupby("trial_id"):
        rows = rows.sort_values("epoch")
        if trial_id in front_ids:
            label = rows["selection"].iloc[0] or trial_id
            ax.plot(rows["epoch"], rows["metric"], marker="o", lw=1.6, label=str(label)[:40])
        else:
            ax.plot(rows["epoch"], rows["metric"], c="0.7", lw=0.8, alpha=0.6)
            if rows["status"].iloc[-1] == STOPPED:
                ax.scatter(rows["epoch"].iloc[-1], rows["metric"].iloc[-1], marker="x", c="0.4", s=20)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.set_xticks(range(1, max_epochs + 1))
    ax.set_title("learning curves: the frontier in colour; x: stopped early", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out["learning_curves"] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    modules = list(weights.index)
    ax.bar(range(len(modules)), weights.to_numpy(), color="tab:gray", label="mean |pre-trained weight|")
    ax.set_xticks(range(len(modules)), modules, rotation=30, ha="right")
    ax.set_ylabel("mean |pre-trained weight|")
    right = ax.twinx()
    values = [transfer.get(m, np.nan) for m in modules]
    right.plot(range(len(modules)), values, "o", c="tab:red", label=f"{metric}, module alone")
    right.set_ylabel(f"validation {metric}, module type alone", color="tab:red")
    ax.set_title("weight magnitude vs. transfer, per module type", fontsize=9)
    fig.tight_layout()
    out["weights"] = _png(fig)
    return out


def _mark(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else ("yes" if value else "no")


def pareto_svg(frame: pd.DataFrame, metric: str, width: int = 760, height: int = 420) -> str:
    """The Pareto front as inline SVG: each trial a circle whose <title> shows its details on hover."""
    finals = final_rows(frame).dropna(subset=["metric"])
    if finals.empty:
        return "<p>No trial reported a result.</p>"
    front_ids = set(frontier(frame)["trial_id"])
    x = np.log10(finals["trainable_params"].clip(lower=1).to_numpy(dtype=float))
    y = finals["metric"].to_numpy(dtype=float)
    scored = finals.dropna(subset=["test_metric"]) if "test_metric" in finals.columns else finals.iloc[:0]
    if len(scored):  # the axis holds the test intervals too
        y = np.concatenate([y, scored["test_low"].to_numpy(dtype=float), scored["test_high"].to_numpy(dtype=float)])
    x0, x1 = math.floor(x.min()), math.ceil(x.max()) + (0 if x.max() < math.ceil(x.max()) else 1)
    y0, y1 = y.min() - 0.02, y.max() + 0.02
    left, bottom, top, right = 60, 40, 20, 20

    def px(v):
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def py(v):
        return top + (y1 - v) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="Pareto front">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             f'fill="none" stroke="#999"/>']
    for decade in range(x0, x1 + 1):
        parts.append(f'<text x="{px(decade):.1f}" y="{height - bottom + 16}" font-size="11" '
                     f'text-anchor="middle">1e{decade}</text>')
    for tick in np.linspace(y0, y1, 5):
        parts.append(f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{tick:.3f}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 4}" font-size="12" text-anchor="middle">trainable '
                 f'parameters (log)</text>')
    parts.append(f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" '
                 f'text-anchor="middle">{html.escape(metric)}</text>')
    front = frontier(frame)
    if len(front):
        points = " ".join(f"{px(math.log10(p)):.1f},{py(m):.1f}"
                          for p, m in zip(front["trainable_params"], front["metric"]))
        parts.append(f'<polyline points="{points}" fill="none" stroke="#d62728" stroke-width="1.5"/>')
    for row in scored.itertuples():  # test: a green diamond and its 95% interval, just right of the trial
        cx = px(math.log10(max(row.trainable_params, 1))) + 6
        details = (f"{row.selection or 'head only'}\ntest {metric} {row.test_metric:.4f}, 95% interval "
                   f"{row.test_low:.4f}-{row.test_high:.4f}\nnot significantly worse than the best: "
                   f"{_mark(row.not_worse_than_best)}; than full fine-tuning: {_mark(row.not_worse_than_full)}")
        parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{py(row.test_low):.1f}" y2="{py(row.test_high):.1f}" '
                     f'stroke="#2ca02c" stroke-width="1.2"/>')
        parts.append(f'<rect class="test" x="{cx - 3:.1f}" y="{py(row.test_metric) - 3:.1f}" width="6" height="6" '
                     f'fill="#2ca02c" transform="rotate(45 {cx:.1f} {py(row.test_metric):.1f})">'
                     f'<title>{html.escape(details)}</title></rect>')
    for row, xv, yv in zip(finals.itertuples(), x, finals["metric"].to_numpy(dtype=float)):
        on_front = row.trial_id in front_ids
        colour = "#d62728" if on_front else ("#1f77b4" if row.status == COMPLETED else "#aaaaaa")
        preset = f"\nreference point: {row.preset}" if isinstance(row.preset, str) else ""
        details = (f"{row.selection or 'head only'}\n{int(row.trainable_params):,} trainable params\n"
                   f"{metric} {row.metric:.4f} (epoch {int(row.epoch)}, {row.status})\nlr {row.lr:.2e}\n"
                   f"trial {row.trial_id}{preset}")
        parts.append(f'<circle class="trial" cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="{5 if on_front else 3.5}" '
                     f'fill="{colour}" fill-opacity="{0.95 if on_front else 0.5}"><title>{html.escape(details)}'
                     f'</title></circle>')
        if isinstance(row.preset, str):
            parts.append(f'<text x="{px(xv) + 5:.1f}" y="{py(yv) - 5:.1f}" font-size="9" fill="#333">'
                         f'{html.escape(row.preset)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ---- the report --------------------------------------------------------------------------------

def build_report(run_dir: str | Path, run_ref: str | None = None, frontier_document: dict | None = None) -> Path:
    """Write RUN_DIR/report.html and RUN_DIR/report_<figure>.png; returns the HTML's path.

    `run_ref`: how the page's export commands name the run (its URI when the run is in remote storage).
    `frontier_document`: frontier.json's content before it is written (a run writes that file last);
    by default it is read from RUN_DIR, and a run without it is reported as unfinished.
    """
    run_dir = Path(run_dir)
    run_ref = run_ref or shlex.quote(str(run_dir))
    if not (run_dir / RUN_FILE).is_file() or not (run_dir / "trials.parquet").is_file():
        raise UsageError(f"{run_dir} is not a ticketsearch run folder with results (run.json, trials.parquet)")
    run = json.loads((run_dir / RUN_FILE).read_text())
    frame = read_trials(run_dir)
    if "timestamp" not in frame:  # runs before the column existed: report order stands in for time
        frame["timestamp"] = np.arange(len(frame), dtype=float)
    front_doc = frontier_document
    if front_doc is None and (run_dir / FRONTIER_FILE).is_file():
        front_doc = json.loads((run_dir / FRONTIER_FILE).read_text())
    reference = ((front_doc["reference_point"]["metric"], front_doc["reference_point"]["log10_params"])
                 if front_doc else (float(final_rows(frame)["metric"].min()), math.log10(run["total_params"])))
    taxonomy = load_taxonomy(run["model"], run["num_labels"], run.get("pooling", "cls"))
    try:
        weights = weight_magnitudes(run["model"], run["num_labels"], taxonomy)
    except OSError as exc:  # the weights are not on this machine (a hub model, offline): the figure says so
        print(f"report: no pre-trained weights for the weight figure ({str(exc).splitlines()[0]})", file=sys.stderr)
        weights = pd.Series({m: np.nan for m in taxonomy.module_types}, name="mean_abs_weight")
    transfer = module_transfer(frame, taxonomy)
    figures = _figures(frame, run, taxonomy, reference, weights, transfer)
    for name, data in figures.items():
        (run_dir / f"report_{name}.png").write_bytes(data)

    def img(name: str, alt: str) -> str:
        encoded = base64.b64encode(figures[name]).decode()
        return f'<figure id="{name}"><img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}"></figure>'

    front = frontier(frame)
    test = (front_doc or {}).get("test")
    if test:
        scored = final_rows(frame).set_index("trial_id")
        front = front.drop(columns=[c for c in front.columns if c.startswith(("test_", "not_worse"))]).join(
            scored[[c for c in scored.columns if c.startswith(("test_", "not_worse"))]], on="trial_id")
    rows = []
    for row in front.itertuples():
        units = ", ".join(row.units) or "(head only)"
        command = f"python -m search.export {run_ref} --max-params {int(row.trainable_params)}"
        test_cells = ""
        if test:
            value = getattr(row, "test_metric", float("nan"))
            test_cells = ("<td>-</td><td></td><td></td>" if pd.isna(value) else
                          f"<td>{value:.4f}</td><td>{row.test_low:.4f}-{row.test_high:.4f}</td>"
                          f"<td>{_mark(row.not_worse_than_best)} / {_mark(row.not_worse_than_full)}</td>")
        rows.append(f"<tr><td>{int(row.trainable_params):,}</td><td>{row.trainable_params / run['total_params']:.3%}"
                    f"</td><td>{row.metric:.4f}</td>{test_cells}<td>{row.lr:.1e}</td><td>{html.escape(str(row.trial_id))}</td>"
                    f"<td>{html.escape(str(row.selection or 'head only'))}</td><td><details><summary>"
                    f"{len(row.units)} units</summary><code>{html.escape(units)}</code></details></td>"
                    f"<td><code>{html.escape(command)}</code></td></tr>")
    finals = final_rows(frame)
    counts = finals["status"].value_counts().to_dict()
    hv = front_doc["hypervolume"] if front_doc else float("nan")
    title = f"ticketsearch: {Path(run['model']).name} on {run['task']}"
    if test:
        test_note = (f"Green diamonds: the test {html.escape(run['metric'])} of each frontier point and reference "
                     f"point, scored once after the search on {test['rows']:,} held-out rows of the "
                     f"{html.escape(test['split'])} split, with its {test['confidence']:.0%} bootstrap interval.")
        test_heads = (f"<th>test {html.escape(run['metric'])}</th><th>{test['confidence']:.0%} interval</th>"
                      "<th>not worse than best / full</th>")
    else:
        test_note = ("<b>This run has no test numbers</b> (written before held-out scoring, or its task has no "
                     "test split): every number here is a validation number the search chose on.")
        test_heads = ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }} code {{ font-size: 12px; }}
svg circle.trial:hover {{ stroke: #000; stroke-width: 1.5; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{finals['trial_id'].nunique()} trials ({', '.join(f'{n} {s}' for s, n in counts.items())}), up to
{run['max_epochs']} epochs; metric: validation <b>{html.escape(run['metric'])}</b>; {run['total_params']:,}
parameters; hypervolume {hv:.4f} (metric x log10 params, reference: {reference[0]:.3f}, 1e{reference[1]:.2f}).
{'' if front_doc else '<b>The run did not finish: no frontier.json.</b>'}</p>
<h2>Pareto front</h2><p>Hover over a point for its details. Red: the frontier; blue: full budget; grey:
stopped early (last epoch reached). Circles are validation numbers, on which the search chose.
{test_note}</p>
<figure id="pareto-svg">{pareto_svg(frame, run['metric'])}</figure>
<h2>Winning-ticket map</h2>{img('ticket_map', 'winning-ticket map')}
<h2>Convergence</h2>{img('hypervolume', 'hypervolume over compute and wall time')}
<h2>Learning curves</h2>{img('learning_curves', 'learning curves')}
<h2>Weight magnitude and transfer</h2><p>The paper explains why small modules transfer well by the
magnitude of their pre-trained weights; here, per module type, the mean absolute pre-trained weight
and the metric the module type reaches when trained alone (its reference point, if the run has it).</p>
{img('weights', 'weight magnitude vs transfer')}
<h2>Frontier trials</h2>
<table><tr><th>trainable</th><th>fraction</th><th>validation {html.escape(run['metric'])}</th>{test_heads}
<th>lr</th><th>trial</th>
<th>selection</th><th>units</th><th>export</th></tr>
{''.join(rows)}</table>
</body></html>
"""
    path = run_dir / REPORT_FILE
    path.write_text(page)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder, or its storage URI (s3://BUCKET/PREFIX/NAME)")
    parser.add_argument("--local-dir", default="results",
                        help="for a storage URI: where the run's files are downloaded and the report written")
    try:
        args = parser.parse_args(argv)
        location = RunLocation.existing(args.run_dir, args.local_dir)
        location.pull((RUN_FILE, TRIALS_FILE, FRONTIER_FILE))
        path = build_report(location.local, location.quoted)
        uploaded = location.push((REPORT_FILE, *(p.name for p in location.local.glob("report_*.png"))))
        print(f"wrote {path}" + (f" (and {len(uploaded)} files to {location})" if uploaded else ""))
        return 0
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
