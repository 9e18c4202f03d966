"""The table recorder's plan for the layer-granular space (bench/record_table.py --space layers)."""

from conftest import load_bench

from spaces import load_taxonomy, switch_presets


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
