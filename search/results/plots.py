"""Static figures of a run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from search.results.table import COMPLETED, final_rows, frontier


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
