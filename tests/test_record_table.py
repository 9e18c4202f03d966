"""The table recorder's plan for the layer-granular space (bench/record_table.py --space layers)."""

import pytest
from conftest import load_bench

from spaces import UsageError, load_taxonomy, switch_presets


def test_the_layer_plan_holds_the_presets_singles_and_repeats(tiny_bert_3_layers):
    recorder = load_bench("record_table")
    taxonomy = load_taxonomy(tiny_bert_3_layers, 2)
    switch_units = recorder.layer_switches(taxonomy)
    assert list(switch_units)[:4] == ["0.value", "0.attn.out", "0.ffn.out", "0.norms"] and len(switch_units) == 12
    assert set(switch_units["1.norms"]) == {"1.attn.norm", "1.ffn.norm"}

    def params(selection):
        return taxonomy.count([u for name in selection for u in switch_units[name]])

    chosen = recorder.layer_selections(switch_units, params, 80)
    assert len(chosen) == 80 and len(set(chosen)) == 80
    names = list(switch_units)
    presets = {tuple(sorted(on, key=names.index)) for on in switch_presets(names).values()}
    assert presets <= set(chosen)  # head, everything, each module type, each layer's norms
    assert {(n,) for n in names} <= set(chosen)  # every switch alone (what a surrogate adds up from)
    layers = {tuple(n for n in names if n.startswith(f"{layer}.")) for layer in range(3)}
    assert layers <= set(chosen)
    assert recorder.layer_selections(switch_units, params, 80) == chosen  # a fixed plan: recording resumes

    plan = recorder.repeat_plan(chosen, 10)
    assert len(plan) == 80 + 2 * 10 and len(set(plan)) == len(plan)
    repeated = [s for s, seed in plan if seed == 1]
    assert repeated[:2] == chosen[:2] and [s for s, seed in plan if seed == 2] == repeated
    parts = {recorder.part_name(s, seed) for s, seed in plan}
    assert len(parts) == len(plan)  # every (selection, seed) is its own part
    assert recorder.part_name(("norms",)) == recorder.part_name(("norms",), 0)  # seed 0 keeps the old names


def test_a_recording_continues_from_its_table_alone_and_refuses_other_settings(tiny_bert_3_layers, text_csv,
                                                                                tmp_path, capsys):
    """Real trainings of a tiny model: what a sitting records is one table; the next sitting, with the
    parts gone (they are not kept), continues from that table and records only what is missing."""
    import pyarrow.parquet as pq

    from trainables import encode, load_task, load_tokenizer

    recorder = load_bench("record_table")
    task, splits = load_task(data=str(text_csv), text_column="review", label_column="sentiment")
    data = tmp_path / "data.npz"
    encode(task, splits, load_tokenizer(tiny_bert_3_layers), 32, 48, 24).save(str(data))
    out = tmp_path / "t.parquet"
    common = ["--model", tiny_bert_3_layers, "--data-cache", str(data), "--out", str(out), "--space", "layers",
              "--selections", "24", "--repeats", "2", "--epochs", "2", "--batch-size", "16", "--threads", "1"]

    assert recorder.main([*common, "--limit", "3"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 3 * 2 and table.column("selection").to_pylist()[:2] == ["head only"] * 2
    assert all(s > 0 for s in table.column("epoch_cpu_seconds").to_pylist())
    assert table.schema.metadata[b"cost_column"] == b"epoch_cpu_seconds"  # a CPU recording's trial cost

    for part in (tmp_path / "t.parquet.parts").glob("*.parquet"):
        part.unlink()
    assert recorder.main([*common, "--limit", "1"]) == 0
    assert "3 trainings restored" in capsys.readouterr().out
    again = pq.read_table(out)
    assert again.num_rows == 4 * 2
    assert all(row in again.to_pylist() for row in table.to_pylist())  # the restored trainings kept as they were
    assert len({(r["selection"], r["seed"]) for r in again.to_pylist()}) == 4  # nothing recorded twice

    assert recorder.main([*common, "--stop-after", "0"]) == 0  # a sitting out of time starts nothing
    assert pq.read_table(out).num_rows == 8

    with pytest.raises(UsageError, match="was recorded on a CPU, this is NVIDIA H200: one table holds the costs"):
        recorder.restore_parts(out, tmp_path, recorder.TrialSettings(model="m", num_labels=2, max_epochs=2), 48, 12,
                               "NVIDIA H200")  # a GPU sitting does not continue a CPU table

    capsys.readouterr()
    assert recorder.main([*common[:-6], "--epochs", "3", "--batch-size", "16", "--threads", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out} was recorded with (train rows, eval rows) [(48, 12)] and 2 epochs, not (48, 12) and 3: "
        "give the same --train-rows/--eval-rows/--epochs, or another --out")


def test_another_task_is_recorded_from_a_local_file(tiny_bert_3_layers, text_csv, tmp_path, capsys):
    """`--data FILE` tokenises a user's file, split as search.run splits it; a column it lacks is one error line."""
    from trainables import Encoded

    recorder = load_bench("record_table")
    out = tmp_path / "reviews.npz"
    common = ["--model", tiny_bert_3_layers, "--data", str(text_csv), "--train-rows", "40", "--eval-rows", "10"]
    assert recorder.main([*common, "--text-column", "review", "--label-column", "sentiment",
                          "--save-data", str(out)]) == 0
    data = Encoded.load(str(out))
    assert (len(data.train), len(data.validation)) == (40, 10) and set(data.train.labels.tolist()) == {0, 1}
    capsys.readouterr()
    assert recorder.main([*common, "--text-column", "body", "--save-data", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "body" in err and len(err.splitlines()) == 1
