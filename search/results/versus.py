"""The search against the answers users get without one: at each free answer's size, what did the search find?

The free answers are reference points every search trains (spaces.SEARCH_REFERENCE_POINTS): PEFT's KappaTune
choice (`lora.kappa`), its docs' `all-linear` (`lora.all-linear`), the LoRA paper's query and value (`lora.qv`),
BEFT's value biases (`beft`) and the paper's LayerNorms (`layernorm`). For each one the run scored, the best
searched ticket at no more trainable parameters is chosen on validation, as the search chooses (the frontier's
searched point with the most parameters within the free answer's, which on a front is the best on validation), and
the two are compared once on the test rows, paired: the difference of their test metrics with a paired bootstrap
interval (search.results.uncertainty). Choosing the searched ticket by its test number would flatter the search.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from search.results.uncertainty import CONFIDENCE, paired_difference

FREE_ANSWERS = ("lora.kappa", "lora.all-linear", "lora.qv", "beft", "layernorm")


def _preset(value) -> str | None:
    return value.split("#", 1)[0] if isinstance(value, str) else None


def versus_free_answers(scored: pd.DataFrame, front: pd.DataFrame, outputs: dict[str, np.ndarray],
                        labels: np.ndarray, metric: str, regression: bool) -> list[dict]:
    """One entry per free answer the run scored on test rows: the answer, the best searched frontier ticket at no
    more parameters (None when the front has none), and the paired test difference (searched minus answer).

    `scored`: the scored trials' final rows (trial_id, preset, selection, trainable_params, metric, test_metric);
    `front`: the frontier's rows; `outputs`: each scored trial's test outputs."""
    by_preset = {_preset(p): row for p, row in zip(scored["preset"], scored.itertuples()) if _preset(p)}
    searched = front[front["preset"].isna() & front["trial_id"].isin(set(outputs))]
    out = []
    for name in FREE_ANSWERS:
        answer = by_preset.get(name)
        if answer is None or answer.trial_id not in outputs:
            continue
        entry: dict = {"free_answer": name, "trial_id": answer.trial_id, "selection": answer.selection,
                       "trainable_params": int(answer.trainable_params), "metric": float(answer.metric),
                       "test_metric": float(answer.test_metric), "searched": None}
        within = searched[searched["trainable_params"] <= answer.trainable_params]
        if len(within):
            best = within.sort_values(["metric", "trainable_params"], ascending=[False, True]).iloc[0]
            test = scored.set_index("trial_id").loc[best["trial_id"], "test_metric"]
            difference = paired_difference(outputs[best["trial_id"]], outputs[answer.trial_id], labels, metric,
                                           regression)
            entry["searched"] = {"trial_id": best["trial_id"], "selection": best["selection"],
                                 "trainable_params": int(best["trainable_params"]), "metric": float(best["metric"]),
                                 "test_metric": float(test)}
            entry["difference"] = {"value": difference.value, "low": difference.low, "high": difference.high,
                                   "confidence": CONFIDENCE}
        out.append(entry)
    return out


def verdict(entry: dict) -> str:
    """`higher`, `lower` (the paired interval excludes 0) or `level`; `none searched` without a searched ticket."""
    difference = entry.get("difference")
    if difference is None:
        return "none searched"
    if difference["low"] > 0:
        return "higher"
    return "lower" if difference["high"] < 0 else "level"


def headline(entries: list[dict], metric: str) -> str | None:
    """One line for the console: the free answer where the searched ticket did best against it."""
    compared = [e for e in entries if e.get("difference")]
    if not compared:
        missing = ", ".join(e["free_answer"] for e in entries)
        return f"against the free answers ({missing}): no searched ticket on the front at their size" if entries \
            else None
    best = max(compared, key=lambda e: e["difference"]["value"])
    s, d = best["searched"], best["difference"]
    return (f"searched vs free: `{s['selection']}` ({s['trainable_params']:,} params) scores {s['test_metric']:.4f} "
            f"test {metric} against {best['free_answer']}'s {best['test_metric']:.4f} "
            f"({best['trainable_params']:,} params): {d['value']:+.4f}, paired {d['confidence']:.0%} "
            f"{d['low']:+.4f} to {d['high']:+.4f} ({verdict(best)})" + "".join(
                f"; against {e['free_answer']}: " + (
                    f"no searched ticket on the front at or below its {e['trainable_params']:,} params"
                    if e.get("difference") is None else f"{verdict(e)}") for e in entries if e is not best) + ".")
