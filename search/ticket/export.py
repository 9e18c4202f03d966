"""A frontier point of a finished run, exported: chosen (`choose`), written as spec.json and the trained tensors
(`export`), and, on request, as a complete Hugging Face folder (`save_model`) and a PEFT adapter (`save_adapter`),
each loaded back as users are told to and checked to give the ticket's own outputs. `python -m search.export` is
the command.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from search.results.table import final_rows, read_trials, trial_point
from search.storage.files import EXPORT_DIR, FRONTIER_FILE, RUN_FILE, TRIALS_FILE
from search.storage.location import RunLocation
from search.storage.run_info import RunInfo
from search.ticket import adapter
from search.ticket.load import load_ticket
from spaces import (
    SPEC_FILE,
    TENSORS_FILE,
    Spec,
    UsageError,
    load_taxonomy,
    merge_lora,
    modeling_ticketsearch,
)


def _no_tests(frontier: dict) -> bool:
    return not frontier.get("test")


def choose(points: list[dict], max_params: int | None = None, min_metric: float | None = None,
           within_noise: str | None = None) -> dict:
    """The frontier point a user asked for; ties go to fewer parameters.

    `within_noise` (`best` or `full`): the fewest-parameter point whose test metric is not significantly
    worse than the best scored point's (or full fine-tuning's); `points` then holds every scored point.
    """
    if not points:
        raise UsageError("the run's frontier is empty: no trial completed its full budget")
    if within_noise is not None:
        key = f"not_worse_than_{within_noise}"
        good = [p for p in points if p.get(key)]
        if not good:
            raise UsageError(f"no scored point is marked not significantly worse than {within_noise}"
                             + (" (the run has no full fine-tuning reference point)" if within_noise == "full" else ""))
        return min(good, key=lambda p: (p["trainable_params"], -p["test_metric"]))
    if max_params is not None:
        within = [p for p in points if p["trainable_params"] <= max_params]
        if not within:
            cheapest = min(p["trainable_params"] for p in points)
            raise UsageError(f"no frontier point has at most {max_params:,} trainable params (cheapest: {cheapest:,})")
        return max(within, key=lambda p: (p["metric"], -p["trainable_params"]))
    if min_metric is not None:
        good = [p for p in points if p["metric"] >= min_metric]
        if not good:
            best = max(p["metric"] for p in points)
            raise UsageError(f"no frontier point reaches {min_metric} (best: {best:.4f})")
        return min(good, key=lambda p: (p["trainable_params"], -p["metric"]))
    return max(points, key=lambda p: (p["metric"], -p["trainable_params"]))


def how_chosen(metric: str, max_params: int | None = None, min_metric: float | None = None,
               within_noise: str | None = None, trial: str | None = None) -> str:
    """How `choose` picked the ticket, and on which split, in the words export prints."""
    if trial is not None:
        return f"trial {trial}, as asked"
    if within_noise is not None:
        against = "full fine-tuning" if within_noise == "full" else "the best scored ticket"
        return f"the fewest parameters within noise of {against}, on the held-out test rows"
    if max_params is not None:
        return f"the best validation {metric} within {max_params:,} trainable parameters"
    if min_metric is not None:
        return f"the fewest parameters reaching validation {metric} {min_metric:g}"
    return f"the best validation {metric} on the front (the default)"


def _test_metrics(frontier: dict, point: dict) -> dict:
    """spec.json's test entries: the held-out metric, its interval and the rows it was measured on."""
    if _no_tests(frontier) or point.get("test_metric") is None:
        return {}
    metric, test = frontier["metric"], frontier["test"]
    return {f"test_{metric}": point["test_metric"], f"test_{metric}_interval": [point["test_low"], point["test_high"]],
            "test_split": test["split"], "test_rows": test["rows"], "test_confidence": test["confidence"],
            "not_worse_than_best": point.get("not_worse_than_best"),
            "not_worse_than_full": point.get("not_worse_than_full")}


def _budget_of(frontier: dict, point: dict) -> dict:
    """The final stage's epochs and rows, for a point it trained again (nothing otherwise)."""
    final = frontier.get("final")
    if not final or point.get("checkpoint") not in {p["checkpoint"] for p in final["retrained"]}:
        return {}
    return {"max_epochs": final["budget"]["epochs"], "train_size": final["budget"]["train_size"]}


def _trial_point(location, frontier: dict, trial: str) -> dict:
    """The point of one trial the user picked (its id, as the report shows it): its final row, with its test
    numbers where it was scored. UsageError when the run has no such trial or it left no trained tensors."""
    scored = {p["trial_id"]: p for p in [*frontier.get("references", []), *frontier["points"]]}
    if trial in scored:
        return scored[trial]
    location.pull((TRIALS_FILE,))
    rows = final_rows(read_trials(location.local))
    row = rows[rows["trial_id"] == trial]
    if row.empty:
        known = ", ".join(list(rows["trial_id"])[:3])
        raise UsageError(f"run has no trial '{trial}' (trial ids look like {known}; the report shows each point's)")
    return trial_point(next(row.itertuples()), frontier["total_params"])


@dataclass(frozen=True)
class Picked:
    """The ticket a user picked from a finished run: its point as frontier.json writes one, and how it was chosen."""

    location: RunLocation
    frontier: dict
    run: RunInfo
    point: dict
    chosen: str

    def spec(self, taxonomy, point: dict | None = None, metrics: dict | None = None, **extra_source) -> Spec:
        """The ticket's spec: its units on `taxonomy`, the metrics the run measured (or `metrics`), its source."""
        point = point or self.point
        frontier, run = self.frontier, self.run
        return Spec.from_units(
            taxonomy,
            point["units"],
            metrics=metrics or {frontier["metric"]: point["metric"], **_test_metrics(frontier, point)},
            source={"run": self.location.local.name, "trial": point["trial_id"], "epoch": point["epoch"],
                    "task": run.task, "label_names": run.label_names, "selection": point.get("selection"),
                    "preset": point.get("preset"), "chosen": self.chosen, **extra_source},
            hyperparameters={"lr": point["lr"], "max_epochs": run.max_epochs, **_budget_of(frontier, point)},
            tensors=TENSORS_FILE,
        )

    def tensors(self, point: dict | None = None) -> Path:
        """The trained tensors of the point's checkpoint (downloaded if the run is remote)."""
        point = point or self.point
        if not point.get("checkpoint"):
            raise UsageError(f"trial {point['trial_id']} has no checkpoint in {self.location.local}")
        tensors = self.location.fetch_folder(point["checkpoint"]) / TENSORS_FILE
        if not tensors.is_file():
            raise UsageError(f"checkpoint of trial {point['trial_id']} is missing: {tensors}")
        return tensors


def pick(run_path: str | Path, max_params: int | None = None, min_metric: float | None = None,
         local_dir: str = "results", within_noise: str | None = None, trial: str | None = None) -> Picked:
    """The point of the finished run at `run_path` (a folder, or its storage URI: what is needed is downloaded into
    `local_dir`) that the options ask for (see `choose`; `trial`: that trial, on the front or not)."""
    location = RunLocation.existing(str(run_path), local_dir)
    location.pull((RUN_FILE, FRONTIER_FILE))
    run_dir = location.local
    if not (run_dir / FRONTIER_FILE).is_file():
        raise UsageError(f"{location} is not a finished run (no {FRONTIER_FILE})")
    frontier = json.loads((run_dir / FRONTIER_FILE).read_text())
    run = RunInfo.read(run_dir)
    final = frontier.get("final")  # the front trained again at the final budget: chosen from where there is one
    candidates = final["points"] if final else frontier["points"]
    if within_noise is not None:
        if _no_tests(frontier):
            raise UsageError(f"{location} has no test numbers (a run written before held-out scoring, or a task "
                             f"without a test split): choose with --max-params or --min-metric")
        scored = {p["trial_id"]: p for p in (final["retrained"] if final else
                                             [*frontier.get("references", []), *frontier["points"]])}
        candidates = [p for p in scored.values() if p.get("test_metric") is not None]
    retrained = {p["trial_id"]: p for p in final["retrained"]} if final else {}
    if trial:
        point = retrained.get(trial) or _trial_point(location, frontier, trial)
    else:
        point = choose(candidates, max_params, min_metric, within_noise)
    chosen = how_chosen(frontier["metric"], max_params, min_metric, within_noise, trial)
    if point.get("trial_id") in retrained:
        budget = final["budget"]
        chosen += f", trained again at the final budget ({budget['train_size']:,} rows x {budget['epochs']} epochs)"
    return Picked(location, frontier, run, point, chosen)


def export(run_path: str | Path, out: Path | None = None, max_params: int | None = None,
           min_metric: float | None = None, local_dir: str = "results", within_noise: str | None = None,
           with_model: bool = False, with_adapter: bool | None = False, trial: str | None = None) -> Path:
    """Export a frontier point of the run at `run_path` (a folder, or its storage URI: what is needed
    is downloaded into `local_dir`); `with_model`: the complete model folder too (`save_model`);
    `with_adapter`: the PEFT adapter too (`OUT/peft`, see search.ticket.adapter): True asks for it (a ticket that
    has none is refused before anything is written), None writes it where the ticket has one. `trial`: export
    this trial (its id, as the report shows it) instead of a frontier point.

    A folder that holds another ticket is refused; when writing fails, what this call wrote is removed."""
    picked = pick(run_path, max_params, min_metric, local_dir, within_noise, trial)
    tensors = picked.tensors()
    run = picked.run
    taxonomy = load_taxonomy(run.model, run.num_labels, run.pooling)
    if taxonomy.fingerprint != run.fingerprint:
        raise UsageError(f"model {run.model} has changed since the run (parameter fingerprints differ)")
    out = Path(out) if out else picked.location.local / EXPORT_DIR / f"trial_{picked.point['trial_id']}"
    return write_export(out, picked.spec(taxonomy), tensors, taxonomy, with_model, with_adapter)


def write_export(out: Path, spec: Spec, tensors: Path, taxonomy, with_model: bool = False,
                 with_adapter: bool | None = False) -> Path:
    """Write a ticket's export folder: `spec.json`, its trained `tensors`, and on request the model folder and the
    PEFT adapter (see `export`). A folder that holds another ticket is refused; when writing fails, what this call
    wrote is removed."""
    _refuse_another_ticket(out, spec)
    if with_adapter:
        adapter.check_adapter(spec, taxonomy)
    elif with_adapter is None:
        with_adapter = adapter.adapter_problem(spec, taxonomy) is None
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(tensors, out / TENSORS_FILE)
        spec.save(out / SPEC_FILE)
        if with_model:
            save_model(out)
        if with_adapter:
            save_adapter(out)
    except BaseException:
        if existed:
            for name in (SPEC_FILE, TENSORS_FILE):
                (out / name).unlink(missing_ok=True)
            for name in (MODEL_DIR, adapter.ADAPTER_DIR):
                shutil.rmtree(out / name, ignore_errors=True)
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _refuse_another_ticket(out: Path, spec: Spec) -> None:
    """UsageError when `out` already holds the export of another sub-network or run (the same one is rewritten)."""
    if not (out / SPEC_FILE).is_file():
        return
    try:
        held = Spec.load(out / SPEC_FILE)
    except UsageError:
        raise UsageError(f"{out} holds a {SPEC_FILE} that is not a ticket; choose another --out") from None
    same = (held.model.get("fingerprint"), held.units, held.source.get("run"), held.source.get("trial")) == (
        spec.model.get("fingerprint"), spec.units, spec.source.get("run"), spec.source.get("trial"))
    if not same:
        raise UsageError(f"{out} already holds another ticket (trial {held.source.get('trial')} of run "
                         f"{held.source.get('run')}); choose another --out or remove it")


MODEL_DIR = "model"  # the complete fine-tuned folder `--save-model` writes beside the spec
MODELING_FILE = "modeling_ticketsearch.py"  # the mean-pooling head's code, carried by a mean-pooled folder
# Sentences every saved folder is checked on: it must give the ticket's own logits before its load line is printed.
_PROBE_TEXTS = ("a moving, beautifully acted film", "dull and far too long", "not bad at all", "the plot? what plot?")
_PROBE_TOLERANCE = 1e-5


def tokenizer_load_line(folder: Path, pooling: str) -> str:
    """The one line that loads the tokenizer of a folder `save_model` wrote. A mean-pooled folder's config names
    its head's code (so that the model never loads silently with the architecture's first-token head), and
    AutoTokenizer reads that config: without trust_remote_code it would stop to ask about code it does not run."""
    remote = ", trust_remote_code=True" if pooling == "mean" else ""
    return f"AutoTokenizer.from_pretrained({str(folder)!r}{remote})"


def model_load_line(folder: Path, pooling: str) -> str:
    """The one line that loads a folder `save_model` wrote, as users are told to."""
    remote = ", trust_remote_code=True" if pooling == "mean" else ""
    return f"AutoModelForSequenceClassification.from_pretrained({str(folder)!r}{remote})"


def _logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(list(_PROBE_TEXTS), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.float()


def _reproduces(ticket, tokenizer, what: str):
    """A check that a reloaded model gives `ticket`'s logits on the probe sentences (UsageError otherwise)."""
    expected = _logits(ticket, tokenizer)

    def check(model) -> None:
        difference = (_logits(model, tokenizer) - expected).abs().max().item()
        if difference > _PROBE_TOLERANCE:
            raise UsageError(f"the saved {what} does not reproduce the ticket (logits differ by {difference:.2g}); "
                             f"use the spec and tensors instead (search.load_ticket)")
    return check


def save_adapter(out: Path) -> Path:
    """Write `OUT/peft`: the ticket as a PEFT adapter on the pre-trained model (search.ticket.adapter), checked by
    loading it as printed. UsageError when the ticket trains part of a module (it has no adapter)."""
    spec = Spec.load(out / SPEC_FILE)
    model, tokenizer = load_ticket(out)
    taxonomy = spec.taxonomy()
    check = _reproduces(model, tokenizer, "PEFT adapter")
    return adapter.write_adapter(out, model, spec, taxonomy, check)


def save_model(out: Path) -> Path:
    """Write `OUT/model`: the ticket as a complete Hugging Face folder, with its tokenizer.

    A `cls`-pooled ticket is the architecture's own model. A mean-pooled one (all-MiniLM-L6-v2, any
    sentence-transformers checkpoint) is a head plain transformers has no class for, so the folder carries
    its code (`modeling_ticketsearch.py`, named by `auto_map`) and loads with `trust_remote_code=True`.
    That is transformers' own way to ship a custom head, and unlike a sentence-transformers layout it gives
    users the classifier itself (`pipeline("text-classification", ...)` works). The folder is loaded back
    the way users are told to and must give the ticket's logits; otherwise it is removed and export fails.
    """
    import transformers

    model, tokenizer = load_ticket(out)
    pooling = Spec.load(out / SPEC_FILE).pooling
    check = _reproduces(model, tokenizer, "model folder")  # the ticket's own logits, adapters unmerged
    merge_lora(model)  # a LoRA ticket's updates folded into its weights: a plain model of the architecture
    folder = out / MODEL_DIR
    if folder.exists():
        shutil.rmtree(folder)
    try:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if pooling == "mean":
            shutil.copyfile(modeling_ticketsearch.__file__, folder / MODELING_FILE)
            config = json.loads((folder / "config.json").read_text())
            config.update(modeling_ticketsearch.auto_map(type(model).__name__, Path(MODELING_FILE).stem))
            (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(
            folder, trust_remote_code=pooling == "mean").eval()
        check(reloaded)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder
