"""The whole search on a real local Ray, a real Optuna study and a tiny randomly initialised BERT."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import search
from search import export, pareto_mask, run
from spaces import MODULE_TYPES, SPEC_FILE, Spec, UsageError, load_taxonomy, refs_from_switches
from trainables import encode, evaluate, load_model, load_task, load_tensors, load_tokenizer


def _args(tiny_bert, text_csv, results, *extra):
    return [
        "--model", tiny_bert, "--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
        "--results-dir", str(results), "--max-epochs", "2", "--train-size", "64", "--eval-size", "24",
        "--max-length", "16", "--batch-size", "16", *extra,
    ]


@pytest.fixture(scope="module")
def finished_run(ray_session, tiny_bert, text_csv, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    code = run.main(_args(tiny_bert, text_csv, results, "--name", "tiny", "--num-samples", "8",
                          "--scheduler", "asha"))
    assert code == 0
    return results / "tiny"


def test_outputs(finished_run):
    for name in ("trials.parquet", "frontier.json", "pareto.png", "run.json"):
        assert (finished_run / name).is_file(), name
    trials = pd.read_parquet(finished_run / "trials.parquet")
    assert trials["trial_id"].nunique() == 8
    assert not trials.duplicated(["trial_id", "epoch"]).any()
    for column in ("trial_id", "config", "units", "trainable_params", "epoch", "metric", "epoch_seconds", "status",
                   "accuracy", "f1", "matthews_correlation"):  # every metric of the task kind, each epoch
        assert column in trials
    validated = trials["metric"].notna()  # after the last epoch only: no early-stopping rung below it here
    assert (trials.loc[validated, "metric"] == trials.loc[validated, "accuracy"]).all()
    assert validated.eq(trials["epoch"] == 2).all()
    assert set(trials["origin"].dropna()) <= {"reference", "spread", "gap", "startup", "model"}
    assert (trials.loc[trials["preset"].notna(), "origin"] == "reference").all()
    assert set(trials["status"]) <= {"completed", "stopped", "error"}
    assert (trials.loc[trials["status"] == "completed"].groupby("trial_id")["epoch"].max() == 2).all()
    # the reference points were evaluated and are labelled
    assert {"full", "head", "layernorm", "beft"} <= set(trials["preset"].dropna())  # the default space's
    # every checkpoint was kept while the run lasted; the finished run keeps each trial's last (2 epochs)
    kept = sorted(p.relative_to(finished_run).as_posix() for p in finished_run.glob("trial_*/checkpoint_*"))
    assert kept == sorted(trials["checkpoint"].dropna()) and len(kept) == 8


def _strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_frontier_is_non_dominated_full_budget_with_exact_counts(finished_run, tiny_bert):
    front = _strict_json(finished_run / "frontier.json")
    points = front["points"]
    assert points and front["metric"] == "accuracy"
    trials = pd.read_parquet(finished_run / "trials.parquet")
    finals = trials[trials["final"]].set_index("trial_id")
    taxonomy = load_taxonomy(tiny_bert, 2)
    for point in points:
        assert finals.loc[point["trial_id"], "status"] == "completed"
        assert point["epoch"] == 2
        assert point["trainable_params"] == taxonomy.count(point["units"])
    done = finals[finals["status"] == "completed"]
    mask = pareto_mask(done["metric"].to_numpy(), done["trainable_params"].to_numpy())
    assert sorted(done.index[mask]) == sorted(p["trial_id"] for p in points)
    assert all(pareto_mask([p["metric"] for p in points], [p["trainable_params"] for p in points]))


def test_export_reproduces_the_trial_on_a_fresh_model(finished_run, tiny_bert, text_csv, tmp_path):
    front = json.loads((finished_run / "frontier.json").read_text())
    best = max(front["points"], key=lambda p: (p["metric"], -p["trainable_params"]))
    assert export.main([str(finished_run), "--out", str(tmp_path / "best")]) == 0
    spec = Spec.load(tmp_path / "best" / "spec.json")
    assert spec.source["trial"] == best["trial_id"] and spec.metrics["accuracy"] == best["metric"]

    model, _ = load_model(spec.model["name"], spec.model["num_labels"])
    taxonomy = load_taxonomy(spec.model["name"], spec.model["num_labels"])
    assert spec.apply(model, taxonomy) == spec.parameters
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == spec.trainable_params
    load_tensors(model, tmp_path / "best" / spec.tensors)
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, load_tokenizer(tiny_bert), 16, 64, 24)
    assert evaluate(model, data.validation)["accuracy"] == pytest.approx(best["metric"])


def test_export_picks_by_budget_and_says_what_it_chose(finished_run, tmp_path, capsys):
    points = json.loads((finished_run / "frontier.json").read_text())["points"]
    cheapest = min(points, key=lambda p: p["trainable_params"])
    assert export.main([str(finished_run), "--max-params", str(cheapest["trainable_params"]),
                        "--out", str(tmp_path / "cheap")]) == 0
    spec = Spec.load(tmp_path / "cheap" / "spec.json")
    assert spec.source["trial"] == cheapest["trial_id"] and spec.source["selection"] == cheapest["selection"]
    out = capsys.readouterr().out
    assert f"  trains: {cheapest['selection']} (and the head)" in out
    assert (f"  chosen: the best validation accuracy within {cheapest['trainable_params']:,} trainable parameters"
            in out)
    full = cheapest["not_worse_than_full"]
    assert ("within noise of full fine-tuning on the test rows: " + ("yes" if full else "no")) in out
    assert export.main([str(finished_run), "--within-noise", "full", "--out", str(tmp_path / "noise")]) == 0
    assert "chosen: the fewest parameters within noise of full fine-tuning, on the held-out test rows" in (
        capsys.readouterr().out)
    with pytest.raises(SystemExit):
        export.main([str(finished_run), "--help"])
    assert "the ticket of the front with the best validation metric" in " ".join(capsys.readouterr().out.split())
    assert export.main([str(finished_run), "--max-params", "1"]) == 2
    assert export.main([str(finished_run), "--min-metric", "1.01"]) == 2


def test_bad_input_exits_2_without_a_finished_run(ray_session, tiny_bert, text_csv, tmp_path, capsys):
    bad_inputs = {  # each with the one line it must end with
        ("--model", str(tmp_path / "no-such-model")): f"model folder not found: {tmp_path / 'no-such-model'}",
        ("--label-column", "nope"): "column 'nope' not in data (columns: review, sentiment)",
        ("--granularity", "neuron"): "argument --granularity: invalid choice: 'neuron'",
        ("--num-samples", "0"): "--num-samples must be at least 1",
        ("--pooling", "max"): "argument --pooling: invalid choice: 'max'",
        ("--fill-gaps", "-1"): "--fill-gaps and --spread-points must not be negative",
        ("--grace-period", "-1"): "--grace-period must be at least 1 epoch (got -1)",
        # excludes the size rule's own rate (scale 1)
        ("--lr-scale-range", "2,5"): "--lr-scale-range 2,5 must contain 1, the size rule's rate",
        ("--trial-seconds", "0"): "--trial-seconds must be positive (got 0)",
        ("--confirm-seeds", "-1"): "--confirm-seeds must not be negative (got -1",
        ("--max-failures", "-5"): "--max-failures must not be negative (got -5",
        ("--switch-values", "off,nosuch"): "unknown switch value 'nosuch'",
        ("--switch-values", "off,bais"): "unknown switch value 'bais' (use off, bias, weight, all, lora; lora takes "
                                         "its ranks from --lora-ranks); did you mean 'bias'?",
        ("--metric", "acuracy"): "metric 'acuracy' does not fit this task (use one of accuracy, f1, "
                                 "matthews_correlation); did you mean 'accuracy'?",
        ("--switch-values", "off,bias,all", "--lora-ranks", "4"): "--lora-ranks 4 has no effect: 'lora' is not among",
        ("--label-column", "sentimnet"): "column 'sentimnet' not in data (columns: review, sentiment); "
                                          "did you mean 'sentiment'?",
        ("--data", str(tmp_path / "tabs.csv")): "column 'review' not in data (columns: review\tsentiment); "
                                               "the header looks tab-separated: name the file .tsv",
        ("--data", str(tmp_path / "ones.csv")): "data has one class only (1): nothing to classify",
        ("--results-dir", str(text_csv)): f"--results-dir {text_csv} is not a folder: {text_csv} is a file",
        ("--results-dir", str(tmp_path / "old"), "--name", "taken"):
            f"run folder {tmp_path / 'old' / 'taken'} exists: choose another --name, or --resume it",
        ("--layers", "3-1"): "layer range 3..1 is empty: its first layer comes after its last (layers count from 0",
        ("--modules", "qurey"): f"unknown module 'qurey' for {tiny_bert} (known: query, key",
        ("--resume", str(tmp_path / "never-made")): f"--resume {tmp_path / 'never-made'}: no such folder",
    }
    (tmp_path / "tabs.csv").write_text("review\tsentiment\n" + "good film\tpos\nbad film\tneg\n" * 30)
    (tmp_path / "ones.csv").write_text("review,sentiment\n" + "nice film,1\n" * 40)
    (tmp_path / "old" / "taken").mkdir(parents=True)
    for i, (extra, message) in enumerate(bad_inputs.items()):
        for dry in ((), ("--dry-run",)):  # what a run refuses, its dry run refuses: before Ray, no folder made
            assert run.main(_args(tiny_bert, text_csv, tmp_path / "r", "--name", f"bad{i}", *dry, *extra)) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"error: {message}"), (extra, dry, err)
    from conftest import make_text_file  # 60 rows: a test split of 6, too few to score anything on

    assert run.main(_args(tiny_bert, make_text_file(tmp_path / "small.csv", rows=60), tmp_path / "r",
                          "--name", "small")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "test split has 6 rows" in err[0], err
    assert not (tmp_path / "r").exists()  # every bad input was refused before any run folder was made
    assert export.main([str(tmp_path / "nothing-here")]) == 2


def test_existing_run_name_is_refused(finished_run, tiny_bert, text_csv):
    args = _args(tiny_bert, text_csv, finished_run.parent, "--name", "tiny")
    assert run.main(args) == 2


def test_export_a_complete_model_folder(finished_run, text_csv, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert export.main([str(finished_run), "--out", str(tmp_path / "e"), "--save-model"]) == 0
    spec = Spec.load(tmp_path / "e" / "spec.json")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "e" / "model")
    assert model.config.id2label == {0: "neg", 1: "pos"}
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "e" / "model")
    task, splits = load_task(data=text_csv, text_column="review", label_column="sentiment")
    data = encode(task, splits, tokenizer, 16, 64, 24)
    assert evaluate(model, data.validation)["accuracy"] == pytest.approx(spec.metrics["accuracy"])


def test_export_refuses_a_folder_holding_another_ticket(finished_run, tiny_bert, tmp_path, capsys):
    from test_ticket_export import make_export

    other = make_export(tmp_path / "e", tiny_bert, "cls", ["0.query"], seed=3)
    before = sorted(p.name for p in other.iterdir())
    assert export.main([str(finished_run), "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "already holds another ticket" in err and "\n" not in err
    assert sorted(p.name for p in other.iterdir()) == before
    assert Spec.load(other / SPEC_FILE).source["trial"] == "t3"  # untouched


def test_a_failed_save_leaves_no_half_written_export(finished_run, tmp_path, monkeypatch, capsys):
    def broken(out):
        raise UsageError("the saved model folder does not reproduce the ticket (logits differ by 0.5)")

    from search.ticket import export as ticket_export

    monkeypatch.setattr(ticket_export, "save_model", broken)  # what a folder that fails its check leads to
    assert export.main([str(finished_run), "--out", str(tmp_path / "x"), "--save-model"]) == 2
    assert "does not reproduce" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _run_choosing(finished_run, tmp_path, preset, extra_units=()):
    """A copy of the finished run whose frontier is one of its reference points (`preset`), so export picks it;
    `extra_units` are added to its units (a ticket the run did not train: for checks made before any tensor is
    read)."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    document = json.loads((copy / "frontier.json").read_text())
    document["points"] = [{**p, "units": [*p["units"], *extra_units]} for p in document["references"]
                          if (p.get("preset") or "").split("#")[0] == preset]
    assert document["points"], f"no {preset} reference point"
    (copy / "frontier.json").write_text(json.dumps(document))
    return copy


def test_export_a_peft_adapter(finished_run, tmp_path, capsys):
    import peft
    from transformers import AutoModelForSequenceClassification

    run_dir = _run_choosing(finished_run, tmp_path, "layernorm")
    assert export.main([str(run_dir), "--out", str(tmp_path / "e"), "--peft"]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "e" / "peft" / "adapter_config.json").is_file() and not (tmp_path / "e" / "model").exists()
    line = printed.split("     or: ")[-1].strip()
    assert line.startswith("PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(")
    model = eval(line, {"PeftModel": peft.PeftModel,
                        "AutoModelForSequenceClassification": AutoModelForSequenceClassification}).eval()
    ticket, tokenizer = export.load_ticket(tmp_path / "e")
    batch = tokenizer(["a fine film", "a dull one"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, ticket(**batch).logits, atol=1e-5, rtol=0)


def test_a_beft_ticket_exports_as_a_peft_beft_adapter(finished_run, tmp_path, capsys):
    run_dir = _run_choosing(finished_run, tmp_path, "beft")
    assert export.main([str(run_dir), "--out", str(tmp_path / "b"), "--save-model"]) == 0
    printed = capsys.readouterr().out
    assert '"peft_type": "BEFT"' in (tmp_path / "b" / "peft" / "adapter_config.json").read_text()
    assert (tmp_path / "b" / "model").is_dir() and "PeftModel.from_pretrained(" in printed and "note: " not in printed


def test_a_peft_adapter_of_a_norm_bias_ticket_is_refused_before_anything_is_written(finished_run, tmp_path, capsys):
    run_dir = _run_choosing(finished_run, tmp_path, "beft", extra_units=["0.attn.norm:bias"])  # BitFit's kind
    assert export.main([str(run_dir), "--out", str(tmp_path / "x"), "--peft"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: this ticket has no PEFT adapter: it trains part of") and "\n" not in err
    assert "LayerNorm (bias only)" in err
    assert not (tmp_path / "x").exists()


def test_spec_check_cli(finished_run, tiny_bert, tiny_bert_3_layers, tmp_path, capsys):
    from spaces import describe as describe_cli

    assert export.main([str(finished_run), "--out", str(tmp_path / "s")]) == 0
    spec_path = str(tmp_path / "s" / "spec.json")
    assert describe_cli.main([tiny_bert, "--spec", spec_path]) == 0
    capsys.readouterr()
    assert describe_cli.main([tiny_bert_3_layers, "--spec", spec_path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: spec is for model") and "\n" not in err


def test_search_runs_on_another_family_with_three_classes(ray_session, tiny_models, tmp_path):
    """The whole search on an encoder found by generic discovery (RoFormer; no module map, no prefix cache).
    What differs between families is checked for each of them without Ray, in test_architectures."""
    from conftest import make_text_file

    family = "roformer"
    data = make_text_file(tmp_path / "three.csv", rows=120, classes=("a", "b", "c"))
    args = ["--model", tiny_models(family), "--data", str(data), "--text-column", "review",
            "--label-column", "sentiment", "--results-dir", str(tmp_path), "--name", family,
            "--max-epochs", "1", "--num-samples", "2", "--train-size", "32", "--eval-size", "16",
            "--max-length", "16", "--scheduler", "none"]
    assert run.main(args) == 0
    trials = pd.read_parquet(tmp_path / family / "trials.parquet")
    assert set(trials["status"]) == {"completed"} and set(trials["preset"]) == {"full", "head"}
    front = json.loads((tmp_path / family / "frontier.json").read_text())
    assert front["points"] and front["model"] == tiny_models(family)


def test_presets_grid_study(ray_session, tiny_bert, text_csv, tmp_path):
    args = _args(tiny_bert, text_csv, tmp_path, "--name", "grid", "--study", "presets", "--granularity", "unit",
                 "--max-epochs", "1", "--switch-values", "off,all")
    assert run.main(args) == 0
    trials = pd.read_parquet(tmp_path / "grid" / "trials.parquet")
    # bitfit needs "bias", so it is not in an on/off space; everything else is, once, at the full budget
    expected = {"full", "head", "layernorm", "layernorm.0", "layernorm.1", *MODULE_TYPES}
    assert set(trials["preset"]) == expected and trials["trial_id"].nunique() == len(expected)
    assert set(trials["status"]) == {"completed"}


def test_study_is_kept_in_a_journal(finished_run):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(finished_run / "optuna.journal")))
    study = optuna.load_study(study_name="tiny", storage=storage)
    states = {t.state for t in study.trials}
    assert len(study.trials) == 8 and states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    trials = pd.read_parquet(finished_run / "trials.parquet")
    completed = trials[trials["final"] & (trials["status"] == "completed")]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == len(completed)


@pytest.mark.parametrize("study", ["paper-modules", "paper-layers"])
def test_paper_studies_on_a_tiny_budget(ray_session, tiny_bert, text_csv, tmp_path, capsys, study):
    from search.driver.prepare import study_points

    code = run.main(_args(tiny_bert, text_csv, tmp_path, "--name", study, "--study", study, "--study-seeds", "2",
                          "--max-epochs", "1", "--train-size", "32", "--eval-size", "16"))
    assert code == 0
    taxonomy = load_taxonomy(tiny_bert, 2)
    points = study_points(study, taxonomy)
    trials = pd.read_parquet(tmp_path / study / "trials.parquet")
    assert len(trials) == 2 * len(points)  # every point once per seed, each to the full budget
    assert sorted(trials.groupby("preset")["seed"].apply(sorted).tolist()) == [[0, 1]] * len(points)
    table = pd.read_csv(tmp_path / study / "study.csv")
    assert table["point"].tolist() == points
    assert (table["seeds"] == 2).all() and table.loc[table["point"] == "full", "share_of_full"].item() == 1.0
    finals = trials[trials["preset"] == points[1]]["metric"]
    assert table.loc[1, "mean"] == pytest.approx(finals.mean()) and table.loc[1, "std"] == pytest.approx(finals.std())
    if study == "paper-modules":
        assert set(MODULE_TYPES) <= set(points) and {"bitfit", "layernorm", "head"} <= set(points)
    else:
        assert [p for p in points if p.startswith("layernorm.")] == ["layernorm.0", "layernorm.1"]
    captured = capsys.readouterr()
    out = captured.out
    assert "share" in out and "mean and standard deviation over 2 seed(s)" in out
    # a quiet console: no Ray Tune banner, tables or TensorBoard hint; it ends with the export and report commands
    for noise in ("TensorBoard", "View detailed results", "Trial status", "Configuration for experiment"):
        assert noise not in out + captured.err
    last = [line for line in out.splitlines() if not line.startswith("warnings from Ray")][-3:]
    assert last[0].startswith(("the winning ticket", "export a frontier point"))
    assert last[-1].startswith("open the report: ")
    granularity = "module" if study == "paper-modules" else "unit"
    assert (f"--study {study} sets --granularity {granularity}, --switch-values off,bias,all, "
            f"--num-samples {len(trials)} (its points), --scheduler none") in out  # said, not silently rewritten


def test_a_study_refuses_a_flag_it_would_override(tiny_bert, text_csv, tmp_path, capsys):
    code = run.main(_args(tiny_bert, text_csv, tmp_path, "--study", "paper-modules", "--granularity", "layer"))
    assert code == 2 and not (tmp_path / "r").exists()
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --study paper-modules sets --granularity module; leave --granularity out (it was layer)"]


def test_report_figures_data(finished_run, tiny_bert):
    from search import frontier, read_trials
    from search.results.figures import module_transfer, ticket_map, weight_magnitudes
    from search.results.figures import search_progress as hypervolume_curve
    from search.results.table import final_rows

    frame = read_trials(finished_run)
    front_doc = json.loads((finished_run / "frontier.json").read_text())
    taxonomy = load_taxonomy(tiny_bert, 2)
    share, effect = ticket_map(frame, taxonomy)
    front = frontier(frame)
    unit = f"0.{taxonomy.module_types[0]}"
    expected = sum(any(u.split(":")[0] == unit for u in units) for units in front["units"]) / len(front)
    assert share.shape == (taxonomy.num_layers, len(taxonomy.module_types))
    assert share.loc[0, taxonomy.module_types[0]] == pytest.approx(expected)
    assert ((share >= 0) & (share <= 1)).all().all() and effect.notna().any().any()

    reference = (front_doc["reference_point"]["metric"], front_doc["reference_point"]["log10_params"])
    curve = hypervolume_curve(frame, reference, 2)
    assert len(curve) == frame["metric"].notna().sum() and curve["trial_epochs"].is_monotonic_increasing
    assert curve["hypervolume"].is_monotonic_increasing and (curve["seconds"] >= 0).all()
    assert curve["hypervolume"].iloc[-1] == pytest.approx(front_doc["hypervolume"])

    weights = weight_magnitudes(tiny_bert, 2, taxonomy)
    assert list(weights.index) == list(taxonomy.module_types) and (weights > 0).all()
    transfer = module_transfer(frame, taxonomy)
    finals = final_rows(frame)
    for module, value in transfer.items():
        assert value == pytest.approx(finals.loc[(finals["preset"] == module) & (finals["status"] == "completed"),
                                                 "metric"].mean())


def test_report_opens_in_a_headless_browser(finished_run):
    """The run's report.html in Debian's chromium: every figure there, the front's points on hover, no
    console error. The screenshot is kept in test-artifacts/."""
    import os
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from search import read_trials
    from search.results.figures import FIGURES
    from search.results.table import final_rows

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (install.sh --test installs it)")
        pytest.skip("chromium not installed")
    page = finished_run / "report.html"
    assert page.is_file()  # written at the end of the run
    for name in FIGURES:
        assert (finished_run / f"report_{name}.png").stat().st_size > 1000
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,3200"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not re.search(r"CONSOLE.*(error|Uncaught)", dom.stderr, re.IGNORECASE), dom.stderr[-2000:]
    for name in ("pareto-svg", *[f for f in FIGURES if f != "pareto"]):
        assert f'id="{name}"' in dom.stdout, name
    assert dom.stdout.count("data:image/png;base64,") == len(FIGURES) - 1
    # each panel says what it shows: curves of training loss (validated once per trial by default), and no
    # transfer axis in a run that trained no module type alone
    assert "Training loss after every epoch (this run validated each trial once" in dom.stdout
    assert "this run trained no module type alone" in dom.stdout
    trials = final_rows(read_trials(finished_run)).dropna(subset=["metric"])
    assert dom.stdout.count('class="trial"') == len(trials)  # one hoverable point per trial
    assert dom.stdout.count("<title>") >= len(trials)
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = subprocess.run([*flags, f"--screenshot={artifacts / 'report.png'}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and (artifacts / "report.png").stat().st_size > 10_000


def test_confirm_seeds_retrains_the_frontier(ray_session, tiny_bert, text_csv, tmp_path, capsys):
    code = run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "confirm", "--num-samples", "4",
                          "--max-epochs", "1", "--train-size", "32", "--eval-size", "16", "--confirm-seeds", "2"))
    assert code == 0
    front = json.loads((tmp_path / "confirm" / "frontier.json").read_text())["points"]
    table = pd.read_csv(tmp_path / "confirm" / "confirm.csv", dtype={"trial_id": str})  # "533e5964" is no number
    assert sorted(table["trial_id"]) == sorted(p["trial_id"] for p in front)
    assert (table["seeds"] == 3).all()  # the search's seed and two more
    assert (table["test_seeds"] == 3).all() and table["test_mean"].notna().all()  # each seed scored on test
    # each point's figures are those of its seeds: the search's trial and the confirm trials' last results
    confirmed = [json.loads(p.read_text().splitlines()[-1])
                 for p in (tmp_path / "confirm" / "confirm").glob("trial_*/result.json")]
    assert len(confirmed) == 2 * len(front)
    for point in front:
        row = table[table["trial_id"] == point["trial_id"]].iloc[0]
        assert row["search_metric"] == pytest.approx(point["metric"])
        seeds = [r["accuracy"] for r in confirmed if r["config"]["point"]["units"] == point["units"]]
        values = [point["metric"], *seeds]
        assert len(values) == 3
        assert row["mean"] == pytest.approx(np.mean(values)) and row["std"] == pytest.approx(np.std(values, ddof=1))
        assert (row["min"], row["max"]) == (pytest.approx(min(values)), pytest.approx(max(values)))
    assert "frontier confirmed over 2 more seed(s)" in capsys.readouterr().out


def test_test_numbers_are_scored_once_after_the_search(finished_run):
    trials = pd.read_parquet(finished_run / "trials.parquet")
    front = _strict_json(finished_run / "frontier.json")
    finals = trials[trials["final"]]
    expected = {p["trial_id"] for p in front["points"]}
    expected |= set(finals.loc[(finals["status"] == "completed") & finals["preset"].notna(), "trial_id"])
    scored = trials[trials["test_metric"].notna()]
    assert set(scored["trial_id"]) == expected and scored["final"].all()  # the chosen ones, on their last row
    assert ((scored["test_low"] <= scored["test_metric"]) & (scored["test_metric"] <= scored["test_high"])).all()
    assert front["test"]["split"] == "test" and front["test"]["rows"] == 12
    assert all(p["test_metric"] is not None for p in front["points"])
    assert {r["preset"] for r in front["references"]} >= {"full", "head", "layernorm", "beft"}
    # the kept outputs give back every figure
    outputs = np.load(finished_run / "test_outputs.npz")
    assert set(outputs.files) == expected | {"labels"}
    for row in scored.itertuples():
        assert row.test_metric == pytest.approx(np.mean(outputs[row.trial_id].argmax(-1) == outputs["labels"]))
    # nothing the search decided on could read them: no reported result holds a test number, and the
    # test outputs were written after the last result any trial reported
    results = [json.loads(line) for path in finished_run.glob("trial_*/result.json")
               for line in path.read_text().splitlines()]
    assert len(results) == len(trials) and not any(k.startswith("test") for r in results for k in r)
    assert (finished_run / "test_outputs.npz").stat().st_mtime >= max(r["timestamp"] for r in results)


def test_trials_are_never_given_the_test_split(ray_session, tiny_bert, text_csv, tmp_path, monkeypatch):
    from ray import tune

    from search.driver import trials

    prep = search.prepare(search.parse_args(_args(tiny_bert, text_csv, tmp_path, "--name", "plan")))
    assert prep.data.test is not None and len(prep.data.test) == 12  # the driver keeps it for the end
    bound = {}
    monkeypatch.setattr(tune, "with_parameters", lambda function, **kwargs: bound.update(kwargs) or function)
    monkeypatch.setattr(tune, "with_resources", lambda function, resources: function)
    trials.build_trainable(prep)  # what every trial is given
    assert bound["data"].test is None and bound["data"].validation is prep.data.validation
    assert bound["settings"].model_files is trials.trial_settings(prep).model_files  # published once a run
    with pytest.raises(dataclasses.FrozenInstanceError):
        prep.pooling = "mean"  # a run's plan does not change once made


def test_export_the_winning_ticket_within_noise(finished_run, tmp_path, capsys):
    front = _strict_json(finished_run / "frontier.json")
    scored = {p["trial_id"]: p for p in front["references"] + front["points"]}
    within = [p for p in scored.values() if p["not_worse_than_best"]]
    cheapest = min(within, key=lambda p: (p["trainable_params"], -p["test_metric"]))
    assert export.main([str(finished_run), "--within-noise", "best", "--out", str(tmp_path / "w")]) == 0
    spec = Spec.load(tmp_path / "w" / "spec.json")
    assert spec.source["trial"] == cheapest["trial_id"]
    assert spec.metrics["test_accuracy"] == cheapest["test_metric"] and spec.metrics["test_rows"] == 12
    low, high = spec.metrics["test_accuracy_interval"]
    assert low <= spec.metrics["test_accuracy"] <= high and spec.model["pooling"] == "cls"
    assert "test accuracy" in capsys.readouterr().out


def test_the_real_run_benchmark_scores_fronts_as_the_product_does(finished_run):
    """bench/real_runs.py's test-split figures, on a finished run: its front's hypervolume from the stored outputs
    is the one its frontier's test metrics give, and the cheapest within noise of full is the product's choice."""
    from conftest import load_bench

    from search import hypervolume

    bench = load_bench("real_runs")
    front = _strict_json(finished_run / "frontier.json")
    labels = np.load(finished_run / "test_outputs.npz")["labels"]
    guess = max(np.mean(labels == c) for c in np.unique(labels))  # the best constant prediction's accuracy on test
    reference = (guess, front["reference_point"]["log10_params"])
    expected = hypervolume([p["test_metric"] for p in front["points"]],
                           [p["trainable_params"] for p in front["points"]], reference)
    scored = bench.test_hypervolume(finished_run, against=finished_run)
    assert scored["test_hypervolume"] == pytest.approx(expected) and scored["low"] <= expected <= scored["high"]
    assert scored["reference_metric"] == pytest.approx(guess)
    assert scored["minus_presets"] == {"difference": 0.0, "low": 0.0, "high": 0.0, "above_in_resamples": 0.0}
    within = [p for p in front["references"] + front["points"] if p["not_worse_than_full"]]
    pick = bench.cheapest_within_noise(finished_run, finished_run)
    assert pick["trainable_params"] == min(p["trainable_params"] for p in within)


def test_runs_written_before_test_numbers_still_load(finished_run, tmp_path, capsys):
    from search import report

    old = shutil.copytree(finished_run, tmp_path / "old")
    trials = pd.read_parquet(old / "trials.parquet")
    trials.drop(columns=[c for c in trials.columns if c.startswith(("test_", "not_worse"))]).to_parquet(
        old / "trials.parquet")
    front = json.loads((old / "frontier.json").read_text())
    front.pop("test"), front.pop("references")
    front["points"] = [{k: v for k, v in p.items() if not k.startswith(("test_", "not_worse"))}
                       for p in front["points"]]
    (old / "frontier.json").write_text(json.dumps(front))
    saved = json.loads((old / "run.json").read_text())
    saved.pop("pooling"), saved["args"].pop("pooling"), saved["args"].pop("lr_groups")
    (old / "run.json").write_text(json.dumps(saved))
    (old / "test_outputs.npz").unlink()

    assert report.main([str(old)]) == 0
    assert "has no test numbers" in (old / "report.html").read_text()
    assert export.main([str(old), "--out", str(tmp_path / "e")]) == 0
    capsys.readouterr()
    assert export.main([str(old), "--within-noise", "best"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "has no test numbers" in err and "\n" not in err
    options = search.RunConfig.from_saved(saved["args"])  # what --resume continues with: the run's own behaviour
    assert options.pooling == "cls" and options.lr_groups is False


def test_dry_run_prints_the_plan_and_trains_nothing(ray_session, tiny_bert, text_csv, tmp_path, capsys):
    # a training set of one batch or less still times a few steps (they come from the next epochs' batches)
    assert run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "one", "--train-size", "1", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "about" in out
    # the default space: whole modules and biases; no LoRA, so none of PEFT's LoRA answers
    assert "(off, bias, all: query, key, value, attn.out and" in out and "lora" not in out
    assert run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "plan", "--num-samples", "6", "--dry-run",
                          "--switch-values", "off,bias,all,lora")) == 0
    out = capsys.readouterr().out
    assert "plan (nothing is trained)" in out and "module granularity" in out
    assert "trials: 6: " in out and "12 trial-epochs at most" in out and "1 CPU, 0 GPU" in out
    # with LoRA offered, the free answers among the reference points, KappaTune's choice named; validated where a
    # decision reads it
    # (on this random tiny model KappaTune's picks are no module type in every layer: the plan says why it is not a
    # reference point at module granularity)
    assert "beft " in out and "KappaTune" in out and "validation rows after epoch 2 " in out
    assert "lora.kappa: " in out and "not a reference point here" in out
    assert "cluster now: CPU 2" in out and "2 trial(s) at a time" in out
    assert "smallest (head only)" in out and "largest (every switch on)" in out and "trial-hours" in out
    total = load_taxonomy(tiny_bert, 2).total_params
    assert f"memory: the model's weights {4 * total / 2**20:.1f} MiB in fp32" in out
    assert "frozen-prefix cache: on" in out and "; off, all: embeddings" in out  # no bias, no linear layer
    # the switches by what they offer: LoRA on the linear module types only
    assert "(off, bias, lora2, lora8, lora32, all: query, key, value, attn.out and 2 more; off, bias, all: " in out
    assert not (tmp_path / "plan").exists()  # nothing was written


def test_the_plan_of_a_decoder_says_why_its_prefix_cache_is_off(tiny_decoders):
    from search.driver.plan import prefix_cache_note

    note = prefix_cache_note(load_taxonomy(tiny_decoders("llama"), 2))
    assert note.startswith("off: a decoder's layers take a causal mask and rotary positions")


def test_a_search_that_can_never_be_placed_says_so_at_once(ray_session, tiny_bert, text_csv, tmp_path, capsys):
    # the suite's Ray has 2 CPUs, no GPU and no autoscaler
    assert run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "gpu", "--gpus-per-trial", "1")) == 2
    assert run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "cpu", "--cpus-per-trial", "4")) == 2
    assert run.main(_args(tiny_bert, text_csv, tmp_path, "--name", "addr", "--address", "not an address")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "asks for GPUs (1 GPU, the cluster has 0)" in err[0] and "more CPUs than it has (4 CPUs" in err[1]
    assert "is not a Ray address" in err[2]


def test_a_search_without_reference_points_starts_spread_over_budgets(tiny_bert, text_csv, tmp_path):
    plain = search.prepare(search.parse_args(_args(tiny_bert, text_csv, tmp_path, "--no-reference-points")))
    assert list(plain.initial_points) == [f"spread-{i}" for i in range(1, 6)]
    costs = [plain.taxonomy.count(refs_from_switches(plain.space.switch_units, p))
             for p in plain.initial_points.values()]
    assert costs[0] == plain.taxonomy.head_params and costs[1] == max(costs)
    seeded = search.prepare(search.parse_args(_args(tiny_bert, text_csv, tmp_path)))
    names = list(seeded.initial_points)  # the reference points first; spread ones fill the start up to 5
    references = [n for n in names if not n.startswith("spread-")]
    assert references == names[:len(references)] and len(references) >= 4 and len(names) == max(5, len(references))
    with_lora = search.prepare(search.parse_args(_args(tiny_bert, text_csv, tmp_path, "--switch-values",
                                                       "off,bias,all,lora")))
    assert not any(name.startswith("spread") for name in with_lora.initial_points)  # 5 or more reference points
    off = search.prepare(search.parse_args(_args(tiny_bert, text_csv, tmp_path, "--no-reference-points",
                                                 "--spread-points", "0")))
    assert off.initial_points == {}


def test_ray_tune_may_hold_as_many_waiting_trials_as_the_cluster_runs(monkeypatch):
    """Ray Tune holds one trial waiting for placement with a searcher of its own: a run then reaches C trials at
    once only after C placements one by one, and an autoscaler sees one trial's demand at a time."""
    from search import parse_args
    from search.driver.launch import run_environment
    from search.driver.plan import PENDING_WHILE_SCALING, pending_trials

    local = parse_args(["--cpus-per-trial", "0.25"])
    assert pending_trials(local, {"CPU": 16.0}, False) == 64
    assert pending_trials(parse_args([]), {"CPU": 2.0}, False) == 2
    gpus = parse_args(["--gpus-per-trial", "0.5", "--address", "auto"])
    assert pending_trials(gpus, {"CPU": 64.0, "GPU": 4.0}, False) == 8
    assert pending_trials(gpus, {"CPU": 8.0}, True) == 1 + PENDING_WHILE_SCALING  # nothing placeable yet
    assert pending_trials(gpus, {"CPU": 8.0, "GPU": 1.0}, None) == 2 + PENDING_WHILE_SCALING
    import os

    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "placeholder")  # restored as it was after the test
    monkeypatch.delenv("TUNE_MAX_PENDING_TRIALS_PG")
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    with run_environment(local, {"CPU": 4.0}) as pending:  # set while the run's Tuner runs
        assert pending == 16 and os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == "16"
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"  # Ray Tune's quiet console, without --verbose
    assert "TUNE_MAX_PENDING_TRIALS_PG" not in os.environ and "RAY_AIR_NEW_OUTPUT" not in os.environ  # as before
    with run_environment(local, {"CPU": 8.0}) as pending:  # a later run in the same process sets its own
        assert pending == 32
    monkeypatch.setenv("TUNE_MAX_PENDING_TRIALS_PG", "3")  # the user's own setting stands
    with run_environment(local, {"CPU": 4.0}) as pending:
        assert pending == 3
    assert os.environ["TUNE_MAX_PENDING_TRIALS_PG"] == "3"


def test_a_resume_pointed_at_another_model_or_data_is_refused(finished_run, tiny_bert_3_layers, tmp_path, capsys):
    """--resume RUN --model/--data say where this machine has the run's inputs; other inputs are refused, in one
    line, before anything is written."""
    before = sorted(p.name for p in finished_run.iterdir())
    assert run.main(["--resume", str(finished_run), "--model", tiny_bert_3_layers]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: model {tiny_bert_3_layers} is not the one run tiny trained")
    (tmp_path / "other.csv").write_text("review,sentiment\n" + "good film,yes\nbad film,no\n" * 60)
    assert run.main(["--resume", str(finished_run), "--data", str(tmp_path / "other.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "are not run tiny's (neg, pos): point --data at the run's file" in err[0], err
    assert sorted(p.name for p in finished_run.iterdir()) == before
