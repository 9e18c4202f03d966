"""A ticket trained in the user's own loop: `search.trainable_ticket` with transformers' `Trainer`."""

import torch
from datasets import Dataset
from test_ticket_export import make_export
from transformers import Trainer, TrainingArguments

import search
from spaces import SPEC_FILE, Spec, ticket_parameters


def _rows(tokenizer, n=32):
    texts = [("a great film" if i % 2 else "an awful film") + f" number {i}" for i in range(n)]
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=12)
    return Dataset.from_dict({**encoded, "labels": [i % 2 for i in range(n)]})


def test_trainer_changes_only_the_ticket_and_the_result_loads(tiny_models, tmp_path):
    units = ["0.attn.norm", "1.ffn.norm", "0.value:bias", "1.query:lora4"]  # norms, a bias, a LoRA adapter
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", units)
    spec = Spec.load(out / SPEC_FILE)
    model, tokenizer = search.trainable_ticket(out)
    assert model.training
    trainable = {n for n, p in ticket_parameters(model).items() if p.requires_grad}
    assert trainable == set(spec.parameters)  # exactly the ticket, head and LoRA adapters included
    before = {n: p.detach().clone() for n, p in ticket_parameters(model).items()}

    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=4, per_device_train_batch_size=8,
                             learning_rate=5e-3, report_to=[], save_strategy="no", use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=_rows(tokenizer)).train()

    after = ticket_parameters(model)
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= set(spec.parameters)  # only the ticket moved
    assert {n for n in spec.parameters if ".lora_B" in n} <= changed  # LoRA's B starts at zero and must move
    saved = search.save_ticket(model, out, tmp_path / "mine", trained_by="Trainer")
    loaded, _ = search.load_ticket(saved)
    batch = tokenizer(["a great film"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(loaded(**batch).logits, model.eval()(**batch).logits, atol=1e-6)
    assert Spec.load(saved / SPEC_FILE).source["trained_by"] == "Trainer"


def test_trained_true_starts_from_the_search_s_tensors(tiny_models, tmp_path):
    out = make_export(tmp_path / "e", tiny_models("bert"), "mean", ["0.attn.norm"])
    fresh, _ = search.trainable_ticket(out)
    kept, _ = search.trainable_ticket(out, trained=True)
    loaded, _ = search.load_ticket(out)
    name = next(n for n in Spec.load(out / SPEC_FILE).parameters if "attention.output.LayerNorm.weight" in n)
    assert torch.equal(ticket_parameters(kept)[name], ticket_parameters(loaded)[name])
    assert not torch.equal(ticket_parameters(fresh)[name], ticket_parameters(loaded)[name])
    assert kept.training and ticket_parameters(kept)[name].requires_grad
