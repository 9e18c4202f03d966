"""The search's proxy against the final budget, from runs that have a final stage (frontier.json's `final`).

    python -m search.run --name NAME --seed S [--data FILE ...]
    python -m search.train results/NAME --front --train-size 4096 --epochs 3      # or --final-train-size on the run
    python -m bench.final_budget results/NAME [...] --out bench/results/final_budget-TASK.json

Per run: Kendall's tau of the two budgets over the retrained tickets (the test metric at the search's budget against
the final one, and the search's validation metric against the final test metric), the "within noise of full
fine-tuning" verdicts that flipped, the ticket `search.export --within-noise full` exports at each budget with its
verdict at both, and at the final budget each free answer the run trained (the LayerNorms, BEFT, PEFT's LoRA
choices where offered) against the best searched ticket at no more parameters, chosen on final validation, paired
on the same test rows (final_test_outputs.npz; scored here from the checkpoints where a run predates that file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from search.results.holdout import score_checkpoints
from search.results.uncertainty import CONFIDENCE, paired_difference
from search.storage.files import FINAL_HOLDOUT_FILE, FRONTIER_FILE, RUN_FILE
from search.ticket.export import choose

FREE_ANSWERS = ("layernorm", "beft", "lora.qv", "lora.kappa", "lora.all-linear")


def final_outputs(run_dir: Path, final: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The final stage's test outputs by trial id, and the labels: saved, or scored now from the checkpoints."""
    saved = run_dir / FINAL_HOLDOUT_FILE
    if saved.is_file():
        with np.load(saved) as arrays:
            return {k: arrays[k] for k in arrays.files if k != "labels"}, arrays["labels"]
    from safetensors.torch import load_file

    from search.driver.prepare import prepare
    from search.settings.config import RunConfig
    from search.storage.run_info import RunInfo
    from spaces import TENSORS_FILE

    info = RunInfo.read(run_dir)
    config = RunConfig.from_saved(info.args, resume=None, name=run_dir.name, results_dir=str(run_dir.parent),
                                  dry_run=False, verbose=False)
    prep = prepare(config)
    assert prep.data.test is not None
    checkpoints = {e["trial_id"]: (e["units"], load_file(str(run_dir / e["checkpoint"] / TENSORS_FILE)))
                   for e in final["retrained"]}
    outputs = score_checkpoints(checkpoints, prep.data.test, _local_settings(prep), prep.config)
    np.savez_compressed(saved, **{"labels": prep.data.test.labels, **outputs})
    return outputs, prep.data.test.labels


def _local_settings(prep):
    """The trials' settings without publishing the model to a Ray instance (scored here, in this process)."""
    from trainables import TrialSettings

    config = prep.config
    return TrialSettings(model=prep.model, num_labels=prep.task.num_labels, max_epochs=config.max_epochs,
                         metric=prep.task.metric, batch_size=config.batch_size, seed=config.seed,
                         pooling=prep.pooling, lr_groups=config.lr_groups)


def summarise(run_dir: Path) -> dict:
    document = json.loads((run_dir / FRONTIER_FILE).read_text())
    final = document.get("final")
    if not final:
        raise SystemExit(f"{run_dir} has no final stage (python -m search.train {run_dir} --front ...)")
    run = json.loads((run_dir / RUN_FILE).read_text())
    metric = document["metric"]
    entries = {e["trial_id"]: e for e in final["retrained"]}
    outputs, labels = final_outputs(run_dir, final)
    searched_scored = [p for p in [*document["references"], *document["points"]] if p.get("test_metric") is not None]
    exported = {}
    for budget, points in (("search", searched_scored), ("final", final["retrained"])):
        try:
            chosen = choose(points, within_noise="full")
        except Exception:  # noqa: BLE001 - no point within noise (or no full reference point)
            exported[budget] = None
            continue
        entry = entries.get(chosen["trial_id"], {})
        exported[budget] = {"trial_id": chosen["trial_id"], "selection": chosen["selection"],
                            "trainable_params": chosen["trainable_params"],
                            "test_at_search": entry.get("search_test_metric"),
                            "test_at_final": entry.get("test_metric"),
                            "within_noise_at_search": entry.get("search_not_worse_than_full"),
                            "within_noise_at_final": entry.get("not_worse_than_full")}
    versus = []
    searched = [e for e in final["retrained"] if not e["preset"]]
    for entry in final["retrained"]:
        name = (entry["preset"] or "").split("#")[0]
        if name not in FREE_ANSWERS:
            continue
        within = [e for e in searched if e["trainable_params"] <= entry["trainable_params"]]
        row = {"free_answer": name, "trainable_params": entry["trainable_params"],
               "test_at_final": entry["test_metric"], "test_at_search": entry["search_test_metric"], "searched": None}
        if within:
            best = max(within, key=lambda e: (e["metric"], -e["trainable_params"]))
            d = paired_difference(outputs[best["trial_id"]], outputs[entry["trial_id"]], labels, metric)
            row["searched"] = {"trial_id": best["trial_id"], "selection": best["selection"],
                               "trainable_params": best["trainable_params"], "test_at_final": best["test_metric"]}
            row["difference_at_final"] = {"value": d.value, "low": d.low, "high": d.high, "confidence": CONFIDENCE}
        versus.append(row)
    return {"run": run_dir.name, "task": document.get("task", run.get("task")), "seed": run["args"]["seed"],
            "metric": metric, "budget": final["budget"], "search_budget": final["search_budget"],
            "retrained": len(entries), "kendall_tau": final.get("kendall_tau"), "flipped": final["flipped"],
            "exported": exported, "versus_free_answers": versus,
            "tickets": [{k: e[k] for k in ("trial_id", "selection", "preset", "trainable_params", "search_metric",
                                           "search_test_metric", "metric", "test_metric",
                                           "search_not_worse_than_full", "not_worse_than_full", "trained_seconds")}
                        for e in final["retrained"]]}


def table(rows: list[dict]) -> str:
    lines = ["| run (seed) | tickets | tau test / search val | flipped | exported: search -> final (test, ~full) |",
             "| --- | ---: | --- | --- | --- |"]
    mark = {True: "yes", False: "no", None: "-"}
    for r in rows:
        tau = r["kendall_tau"] or {}
        flips = "; ".join(f"{f['selection'] or 'head only'} {mark[f['search']]}->{mark[f['final']]}"
                          for f in r["flipped"]) or "none"
        ex = r["exported"]["search"]
        shown = "-" if ex is None else (f"{ex['selection']} ({ex['trainable_params']:,}): {ex['test_at_search']:.3f} "
                                        f"{mark[ex['within_noise_at_search']]} -> {ex['test_at_final']:.3f} "
                                        f"{mark[ex['within_noise_at_final']]}")
        lines.append(f"| {r['run']} ({r['seed']}) | {r['retrained']} | {tau.get('test')} / "
                     f"{tau.get('search_validation')} | {flips} | {shown} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = [summarise(run) for run in args.runs]
    args.out.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(table(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
