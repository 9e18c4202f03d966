"""Does an epoch trained again after a restore give the same numbers, on this device?

    python3 bench/gpu_resume_check.py        (CPU or GPU; about a minute on either)

A resumed run retrains the epochs after the checkpoint its snapshot names (search/run.py keeps
every checkpoint while a run lasts); the checkpoint holds the random state (CPU and CUDA), so the
epoch's dropout masks are the same. This trains epoch 1, saves, trains epoch 2; then a fresh trial
restores the checkpoint and trains epoch 2 again, and the two epoch-2 results and trained tensors
are compared. On a GPU, exact equality also needs deterministic kernels; the figures say how close.
A small random BERT and synthetic rows (no hub, no network), with the trials' own code (bf16
autocast on GPU, frozen-prefix caching).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

from bench.gpu_trial_cost import synthetic  # noqa: E402
from spaces import load_taxonomy  # noqa: E402
from trainables import Encoded, TrialRun, TrialSettings  # noqa: E402


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}")
    config = BertConfig(num_labels=2, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = str(Path(scratch) / "bert")
        torch.manual_seed(0)
        BertForSequenceClassification(config).save_pretrained(model_dir)
        split = synthetic(1024, 16, 64, config.vocab_size)
        data = Encoded(split, split, split, 0)
        taxonomy = load_taxonomy(model_dir, 2)
        top = taxonomy.num_layers - 1
        for label, units in (("top layer (cached prefix)", [u.id for u in taxonomy.units if u.layer == top]),
                             ("full", [u.id for u in taxonomy.units])):
            settings = TrialSettings(model=model_dir, num_labels=2, max_epochs=2, batch_size=32,
                                     cache_dir=str(Path(scratch) / "cache"))
            config_ = {"units": units, "lr": 1e-4}
            checkpoint = Path(scratch) / label.split()[0]
            checkpoint.mkdir()
            straight = TrialRun.start(config_, len(data.train), settings, device)
            epochs = straight.epochs(data, settings)
            next(epochs)
            straight.save(checkpoint)
            second = next(epochs)
            torch.manual_seed(12345)
            again = TrialRun.start(config_, len(data.train), settings, device)
            again.restore(checkpoint)
            repeated = next(again.epochs(data, settings))
            diffs = {k: abs(repeated[k] - second[k]) for k in ("train_loss", "eval_loss", "accuracy")}
            tensor_diff = max((again.params[n].float() - straight.params[n].float()).abs().max().item()
                              for n in straight.saved)
            same = all(v == 0 for v in diffs.values()) and tensor_diff == 0
            print(f"{label:<26} epoch 2 straight vs after restore: "
                  + ", ".join(f"|d {k}| {v:.3g}" for k, v in diffs.items())
                  + f", max |d tensor| {tensor_diff:.3g} -> {'identical' if same else 'differs'}")


if __name__ == "__main__":
    main()
