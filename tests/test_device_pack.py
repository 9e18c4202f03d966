"""bench/device_pack.py: a model carried to a machine without network computes what the original does,
and is pooled as the original is (a sentence-transformers folder's pooling files travel with it)."""

import json
import shutil

import numpy as np
import torch
from conftest import load_bench
from transformers import AutoModel

from spaces import folder_pooling, load_taxonomy


def test_a_packed_model_unpacks_to_the_same_model_and_pooling(tiny_bert, tmp_path):
    packer = load_bench("device_pack")
    original = tmp_path / "original"
    shutil.copytree(tiny_bert, original)
    (original / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (original / "1_Pooling").mkdir()
    (original / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32,
                                                                    "pooling_mode_mean_tokens": True}))
    assert folder_pooling(original) == "mean"
    ids = np.array([[101, 2023, 3185, 2001, 2307, 102], [101, 6659, 102, 0, 0, 0]])
    np.savez(tmp_path / "data.npz", **{"train.input_ids": ids, "validation.input_ids": ids[:1]})

    packer.pack(str(original), str(tmp_path / "data.npz"), str(tmp_path / "pack.npz"))
    packer.unpack(str(tmp_path / "pack.npz"), str(tmp_path / "unpacked"))
    unpacked = tmp_path / "unpacked"

    assert folder_pooling(unpacked) == "mean"  # without modules.json it would read "cls": another head
    assert not any(p.name.startswith(("tokenizer", "vocab")) for p in unpacked.rglob("*"))
    a, b = load_taxonomy(str(original), 2, "mean"), load_taxonomy(str(unpacked), 2, "mean")
    assert a.total_params == b.total_params and [u.id for u in a.units] == [u.id for u in b.units]
    with torch.no_grad():
        want = AutoModel.from_pretrained(original).eval()(input_ids=torch.from_numpy(ids)).last_hidden_state
        got = AutoModel.from_pretrained(unpacked).eval()(input_ids=torch.from_numpy(ids)).last_hidden_state
    torch.testing.assert_close(got, want, rtol=0, atol=0)
