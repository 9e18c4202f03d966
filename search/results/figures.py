"""A run's figures: their data (ticket map, hypervolume over compute, weights vs transfer) and their drawings
(PNG through matplotlib, no display needed: the run's pareto.png and the report's; the Pareto front as inline SVG).
search.results.html_report assembles the report from them.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import BinaryIO

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from search.results.table import COMPLETED, STOPPED, final_rows, frontier  # noqa: E402
from search.steer.pareto import hypervolume_curve  # noqa: E402
from trainables import load_model  # noqa: E402

FIGURES = ("pareto", "ticket_map", "hypervolume", "learning_curves", "weights")


# ---- the figures' data -------------------------------------------------------------------------

def unit_of(ref: str) -> str:
    """`3.value:bias` -> `3.value`."""
    return ref.split(":", 1)[0]


def ticket_map(frame: pd.DataFrame, taxonomy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(share, effect), each layers x module types: the share of frontier points that train a unit
    (a bias-only or LoRA-adapted selection counts), and the mean final metric of completed trials training it minus
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


def search_progress(frame: pd.DataFrame, reference: tuple[float, float], max_epochs: int) -> pd.DataFrame:
    """After each reported epoch (in report order): trial-epochs so far, seconds since the first
    report, and the hypervolume of the trials that had reached the full budget by then."""
    rows = frame.dropna(subset=["metric"]).sort_values(["timestamp", "trial_id", "epoch"], kind="stable")
    return pd.DataFrame({
        "trial_epochs": np.arange(1, len(rows) + 1),
        "seconds": rows["timestamp"].to_numpy() - rows["timestamp"].min() if len(rows) else [],
        "hypervolume": hypervolume_curve(rows["metric"], rows["trainable_params"], rows["epoch"], max_epochs,
                                         reference),
    }, columns=["trial_epochs", "seconds", "hypervolume"])


def weight_magnitudes(model: str, num_labels: int, taxonomy) -> pd.Series:
    """Mean absolute pre-trained weight of each module type (its weight matrices/vectors, all layers)."""
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
    plt.close(fig)
    return buffer.getvalue()


def figures(frame, run, taxonomy, reference, weights, transfer) -> dict[str, bytes | None]:
    metric, max_epochs = run.metric, run.max_epochs
    out: dict[str, bytes | None] = {}
    buffer_path = io.BytesIO()
    pareto_plot(frame, buffer_path, metric, f"{Path(run.model).name} on {run.task}", reference[0])
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

    curve = search_progress(frame, reference, max_epochs)
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

    out["learning_curves"] = learning_curves(frame, metric, max_epochs)
    out["weights"] = weights_figure(weights, transfer, metric)
    return out


def curve_kinds(frame: pd.DataFrame) -> list[str]:
    """The per-epoch series a run has as curves (two epochs or more of one trial): `train_loss` (recorded every
    epoch), `metric` (validation, every epoch with --eval-every-epoch; otherwise only at the last)."""
    kinds = []
    for column in ("train_loss", "metric"):
        if column in frame and (frame.dropna(subset=[column]).groupby("trial_id")["epoch"].nunique() >= 2).any():
            kinds.append(column)
    return kinds


def learning_curves(frame: pd.DataFrame, metric: str, max_epochs: int) -> bytes | None:
    """Training loss and (where validated every epoch) the validation metric per epoch, one line a trial: the
    frontier in colour, the others faded, an x where early stopping cut one; None when no trial has two epochs
    of either (the report then says how to get curves)."""
    kinds = curve_kinds(frame)
    if not kinds:
        return None
    front_ids = set(frontier(frame)["trial_id"])
    labels = {"train_loss": "training loss (mean over the epoch)", "metric": f"validation {metric}"}
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds) + 1, 4.2), squeeze=False)
    for ax, column in zip(axes[0], kinds, strict=True):
        for trial_id, rows in frame.dropna(subset=[column]).groupby("trial_id"):
            rows = rows.sort_values("epoch")
            if trial_id in front_ids:
                label = rows["selection"].iloc[0] or trial_id
                ax.plot(rows["epoch"], rows[column], marker="o", lw=1.6, label=str(label)[:40])
            else:
                ax.plot(rows["epoch"], rows[column], c="0.7", lw=0.8, alpha=0.6)
                if rows["status"].iloc[-1] == STOPPED:
                    ax.scatter(rows["epoch"].iloc[-1], rows[column].iloc[-1], marker="x", c="0.4", s=20)
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels[column])
        ax.set_xticks(range(1, max_epochs + 1))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("learning curves: the frontier in colour, other trials grey; x: stopped early", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def weights_figure(weights: pd.Series, transfer: pd.Series, metric: str) -> bytes | None:
    """Mean |pre-trained weight| per module type, and on a second axis the metric of each module type trained
    alone where the run trained it alone (the paper's module-wise study); None without weights."""
    if weights.dropna().empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    modules = list(weights.index)
    ax.bar(range(len(modules)), weights.to_numpy(), color="tab:gray", label="mean |pre-trained weight|")
    ax.set_xticks(range(len(modules)), modules, rotation=30, ha="right")
    ax.set_ylabel("mean |pre-trained weight|")
    values = [transfer.get(m, np.nan) for m in modules]
    if not all(np.isnan(values)):
        right = ax.twinx()
        right.plot(range(len(modules)), values, "o", c="tab:red", label=f"{metric}, module alone")
        right.set_ylabel(f"validation {metric}, module type alone", color="tab:red")
        ax.set_title("weight magnitude vs. transfer, per module type", fontsize=9)
    else:
        ax.set_title("mean |pre-trained weight|, per module type", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def mark(value) -> str:
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
                   f"{mark(row.not_worse_than_best)}; than full fine-tuning: {mark(row.not_worse_than_full)}")
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
                   f"trial {row.trial_id} (export it: python -m search.export RUN --trial {row.trial_id}){preset}")
        parts.append(f'<circle class="trial" cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="{5 if on_front else 3.5}" '
                     f'fill="{colour}" fill-opacity="{0.95 if on_front else 0.5}"><title>{html.escape(details)}'
                     f'</title></circle>')
        if isinstance(row.preset, str):
            parts.append(f'<text x="{px(xv) + 5:.1f}" y="{py(yv) - 5:.1f}" font-size="9" fill="#333">'
                         f'{html.escape(row.preset)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ---- the run's own plot -------------------------------------------------------------------------

def pareto_plot(frame: pd.DataFrame, path: Path | BinaryIO, metric: str, title: str,
                majority: float | None = None) -> None:
    """Metric vs. trainable parameters (log axis): every trial faded, the frontier drawn, presets labelled."""
    finals = final_rows(frame).dropna(subset=["metric"])
    front = frontier(frame)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    stopped = finals[finals["status"] != COMPLETED]
    done = finals[finals["status"] == COMPLETED]
    ax.scatter(stopped["trainable_params"], stopped["metric"], s=18, c="0.75", marker="x",
               label="stopped early (last epoch)")
    ax.scatter(done["trainable_params"], done["metric"], s=22, c="tab:blue", alpha=0.45, label="full budget")
    if len(front):
        ax.step(front["trainable_params"], front["metric"], where="post", c="tab:red", lw=1.5)
        ax.scatter(front["trainable_params"], front["metric"], s=40, c="tab:red", zorder=3, label="Pareto frontier")
    labelled = finals.dropna(subset=["preset"]).groupby(["trainable_params", "metric"])["preset"]
    for i, ((params, value), names) in enumerate(labelled):  # presets on one point share a label
        ax.annotate(" / ".join(sorted(names)), (params, value), textcoords="offset points",
                    xytext=(4, 4 + 9 * (i % 3)), fontsize=7, color="0.2")  # staggered: neighbours overlap less
    if "test_metric" in finals.columns and finals["test_metric"].notna().any():
        scored = finals.dropna(subset=["test_metric"])
        errors = [scored["test_metric"] - scored["test_low"], scored["test_high"] - scored["test_metric"]]
        ax.errorbar(scored["trainable_params"] * 1.08, scored["test_metric"], yerr=errors, fmt="D", ms=4,
                    c="tab:green", ecolor="tab:green", elinewidth=1, capsize=2, alpha=0.8,
                    label="test, scored once after the search (95% interval)")
    if majority is not None:
        ax.axhline(majority, c="0.5", ls=":", lw=1, label="majority class (validation)")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (head included, log scale)")
    ax.set_ylabel(f"{metric} (validation; test where marked)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")  # few params and a high metric: the corner a frontier rarely reaches
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
