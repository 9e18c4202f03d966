"""A run's HTML report (`build_report`): what `python -m search.report` and the end of every run write.

Opens offline: figures are embedded (PNG as data URIs, the
Pareto front as inline SVG whose points show their details on hover), and there is no script.

- the Pareto front: every trial faded, the frontier drawn, the reference points labelled;
- the winning-ticket map: layers x module types, the share of frontier points that train each
  unit, and the mean metric of finished trials with it minus without it;
- hypervolume over compute (trial-epochs) and over wall time: how the search converged;
- learning curves (training loss every epoch; validation with --eval-every-epoch): the frontier's in colour,
  the others faded, an x where early stopping cut one; a sentence instead where no trial has two epochs;
- the paper's explanation: mean absolute pre-trained weight of each module type, next to the metric that module
  type reaches alone where the run trained one alone (its reference point);
- the frontier's trials, their units and the command that exports each.
"""

from __future__ import annotations

import base64
import html
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from search.results.figures import curve_kinds, figures, mark, module_transfer, pareto_svg, weight_magnitudes
from search.results.table import final_rows, frontier, read_trials
from search.results.versus import verdict
from search.steer.pareto import reference_point
from search.storage.files import FRONTIER_FILE, REPORT_FILE, RUN_FILE, TRIALS_FILE
from search.storage.run_info import RunInfo
from spaces import UsageError, load_taxonomy


def _versus_section(entries: list[dict] | None, metric: str) -> str:
    """The search against the free answers (search.results.versus), as a table; empty without test numbers."""
    if not entries:
        return ""
    rows = []
    for e in entries:
        s, d = e.get("searched"), e.get("difference")
        searched = ("<td colspan=3>no searched ticket on the front at this size</td>" if s is None else
                    f"<td>{html.escape(str(s['selection'] or 'head only'))}</td><td>{s['trainable_params']:,}</td>"
                    f"<td>{s['test_metric']:.4f}</td>")
        span = "" if d is None else f"{d['value']:+.4f} ({d['low']:+.4f} to {d['high']:+.4f})"
        rows.append(f"<tr><td>{html.escape(e['free_answer'])}</td><td>{e['trainable_params']:,}</td>"
                    f"<td>{e['test_metric']:.4f}</td>{searched}<td>{span}</td><td>{verdict(e)}</td></tr>")
    return (f"<h2>The search against the free answers</h2><p>For each answer a user gets without searching (PEFT's "
            f"KappaTune, all-linear, LoRA on query and value, BEFT, the LayerNorms), the best searched ticket at no "
            f"more parameters, chosen on validation, and both scored on the same test rows: the difference in test "
            f"{html.escape(metric)} with its paired 95% bootstrap interval.</p><table><tr><th>free answer</th>"
            f"<th>params</th><th>test</th><th>searched ticket</th><th>params</th><th>test</th>"
            f"<th>searched minus free</th><th></th></tr>{''.join(rows)}</table>")


# ---- the report --------------------------------------------------------------------------------

def build_report(run_dir: str | Path, run_ref: str | None = None, frontier_document: dict | None = None) -> Path:
    """Write RUN_DIR/report.html and RUN_DIR/report_<figure>.png; returns the HTML's path.

    `run_ref`: how the page's export commands name the run (its URI when the run is in remote storage).
    `frontier_document`: frontier.json's content before it is written (a run writes that file last);
    by default it is read from RUN_DIR, and a run without it is reported as unfinished.
    """
    run_dir = Path(run_dir)
    run_ref = run_ref or shlex.quote(str(run_dir))
    if not (run_dir / RUN_FILE).is_file() or not (run_dir / TRIALS_FILE).is_file():
        raise UsageError(f"{run_dir} is not a ticketsearch run folder with results (run.json, trials.parquet)")
    run = RunInfo.read(run_dir)
    frame = read_trials(run_dir)
    if "timestamp" not in frame:  # runs before the column existed: report order stands in for time
        frame["timestamp"] = np.arange(len(frame), dtype=float)
    front_doc = frontier_document
    if front_doc is None and (run_dir / FRONTIER_FILE).is_file():
        front_doc = json.loads((run_dir / FRONTIER_FILE).read_text())
    reference = ((front_doc["reference_point"]["metric"], front_doc["reference_point"]["log10_params"])
                 if front_doc else reference_point(float(final_rows(frame)["metric"].min()), run.total_params))
    taxonomy = load_taxonomy(run.model, run.num_labels, run.pooling)
    try:
        weights = weight_magnitudes(run.model, run.num_labels, taxonomy)
    except OSError as exc:  # the weights are not on this machine (a hub model, offline): the figure says so
        print(f"report: no pre-trained weights for the weight figure ({str(exc).splitlines()[0]})", file=sys.stderr)
        weights = pd.Series({m: np.nan for m in taxonomy.module_types}, name="mean_abs_weight")
    transfer = module_transfer(frame, taxonomy)
    drawn = figures(frame, run, taxonomy, reference, weights, transfer)
    for name, data in drawn.items():
        figure = run_dir / f"report_{name}.png"
        if data is None:  # nothing to draw (an earlier report's figure would pass for this run's)
            figure.unlink(missing_ok=True)
        else:
            figure.write_bytes(data)

    def img(name: str, alt: str) -> str:
        encoded = base64.b64encode(drawn[name] or b"").decode()
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
                          f"<td>{mark(row.not_worse_than_best)} / {mark(row.not_worse_than_full)}</td>")
        rows.append(f"<tr><td>{int(row.trainable_params):,}</td><td>{row.trainable_params / run.total_params:.3%}"
                    f"</td><td>{row.metric:.4f}</td>{test_cells}<td>{row.lr:.1e}</td><td>{html.escape(str(row.trial_id))}</td>"
                    f"<td>{html.escape(str(row.selection or 'head only'))}</td><td><details><summary>"
                    f"{len(row.units)} units</summary><code>{html.escape(units)}</code></details></td>"
                    f"<td><code>{html.escape(command)}</code></td></tr>")
    finals = final_rows(frame)
    counts = finals["status"].value_counts().to_dict()
    hv = front_doc["hypervolume"] if front_doc else float("nan")
    title = f"ticketsearch: {Path(run.model).name} on {run.task}"
    if test:
        test_note = (f"Green diamonds: the test {html.escape(run.metric)} of each frontier point and reference "
                     f"point, scored once after the search on {test['rows']:,} held-out rows of the "
                     f"{html.escape(test['split'])} split, with its {test['confidence']:.0%} bootstrap interval.")
        test_heads = (f"<th>test {html.escape(run.metric)}</th><th>{test['confidence']:.0%} interval</th>"
                      "<th>not worse than best / full</th>")
    else:
        test_note = ("<b>This run has no test numbers</b> (written before held-out scoring, or its task has no "
                     "test split): every number here is a validation number the search chose on.")
        test_heads = ""
    versus = _versus_section((front_doc or {}).get("versus_free_answers"), run.metric)
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
{run.max_epochs} epochs; metric: validation <b>{html.escape(run.metric)}</b>; {run.total_params:,}
parameters; hypervolume {hv:.4f} (metric x log10 params, reference: {reference[0]:.3f}, 1e{reference[1]:.2f}).
{'' if front_doc else '<b>The run did not finish: no frontier.json.</b>'}</p>
<h2>Pareto front</h2><p>Hover over a point for its details. Red: the frontier; blue: full budget; grey:
stopped early (last epoch reached). Circles are validation numbers, on which the search chose.
{test_note}</p>
<figure id="pareto-svg">{pareto_svg(frame, run.metric)}</figure>
<h2>Winning-ticket map</h2>{img('ticket_map', 'winning-ticket map')}
<h2>Convergence</h2>{img('hypervolume', 'hypervolume over compute and wall time')}
<h2>Learning curves</h2>{_curves_section(drawn, curve_kinds(frame), run.metric, img)}
<h2>Weight magnitude and transfer</h2>{_weights_section(drawn, transfer, img)}
<h2>Frontier trials</h2>
<table><tr><th>trainable</th><th>fraction</th><th>validation {html.escape(run.metric)}</th>{test_heads}
<th>lr</th><th>trial</th>
<th>selection</th><th>units</th><th>export</th></tr>
{''.join(rows)}</table>
{versus}
{_final_section((front_doc or {}).get("final"), run.metric)}
</body></html>
"""
    path = run_dir / REPORT_FILE
    path.write_text(page)
    return path


def _curves_section(drawn: dict, kinds: list[str], metric: str, img) -> str:
    if drawn["learning_curves"] is None:
        return ("<p>No curves: every trial has one epoch. Training loss is recorded after every epoch of a run of "
                "two epochs or more (<code>--max-epochs</code>), the validation metric with "
                "<code>--eval-every-epoch</code>.</p>")
    validation = (f"and the validation {html.escape(metric)} after every epoch" if "metric" in kinds else
                  "(this run validated each trial once, after its last epoch, so it has no validation curves: "
                  "<code>--eval-every-epoch</code> draws them, at the cost of a validation pass per epoch)")
    return f"<p>Training loss after every epoch {validation}.</p>" + img("learning_curves", "learning curves")


def _weights_section(drawn: dict, transfer, img) -> str:
    if drawn["weights"] is None:
        return "<p>No figure: the model's pre-trained weights are not on this machine.</p>"
    what = ("and the metric each module type reaches when trained alone (its reference point)" if len(transfer) else
            "(this run trained no module type alone, so there is no transfer to set beside it: "
            "<code>--study paper-modules</code> trains each one alone)")
    return ("<p>The paper explains why small modules transfer well by the magnitude of their pre-trained weights; "
            f"here, per module type, the mean absolute pre-trained weight {what}.</p>"
            + img("weights", "weight magnitude vs transfer"))


def _final_section(final: dict | None, metric: str) -> str:
    """Both fronts side by side: each ticket's numbers at the search's budget and at the final one."""
    if not final:
        return ""
    budget, search = final["budget"], final["search_budget"]
    mark = {True: "yes", False: "no", None: "-"}

    def number(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    def row(e: dict) -> str:
        span = "" if e["test_low"] is None else f"{e['test_low']:.3f}-{e['test_high']:.3f}"
        preset = f" [{html.escape(e['preset'])}]" if e["preset"] else ""
        cells = [f"{e['trainable_params']:,}", html.escape(e["selection"] or "head only") + preset,
                 number(e["search_metric"]), number(e["search_test_metric"]), mark[e["search_not_worse_than_full"]],
                 number(e["metric"]), number(e["test_metric"]), span, mark[e["not_worse_than_full"]],
                 "yes" if e["on_final_front"] else ""]
        return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"

    rows = "".join(row(e) for e in final["retrained"])
    tau = final.get("kendall_tau")
    agreement = ("" if not tau else
                 f" Rank agreement over {tau['points']} tickets (Kendall's tau): test {html.escape(metric)} at the "
                 f"search's budget against the final one {tau['test']}; the search's validation "
                 f"{html.escape(metric)}, what it chose on, against the final test {html.escape(metric)} "
                 f"{tau['search_validation']}.")
    flips = final["flipped"]
    flipped = (" Every ticket keeps its \"within noise of full fine-tuning\" verdict." if not flips else
               " Verdicts \"within noise of full fine-tuning\" that flipped: " + "; ".join(
                   f"{html.escape(f['selection'] or 'head only')} ({mark[f['search']]} to {mark[f['final']]})"
                   for f in flips) + ".")
    return f"""<h2 id="final">At the final budget</h2><p>The front's tickets and the reference points trained again on
{budget['train_size']:,} training rows for {budget['epochs']} epochs (the search: {search['train_size']:,} rows,
{search['epochs']} epochs), with the same recipe, scored on the same test rows.{agreement}{flipped}
<code>search.export</code> chooses from the final front.</p>
<table><tr><th>trainable</th><th>ticket</th><th>search: validation</th><th>test</th><th>~full</th>
<th>final: validation</th><th>test</th><th>95% interval</th><th>~full</th><th>on the final front</th></tr>
{rows}</table>"""
