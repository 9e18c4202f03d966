"""The fine-tuning trainable: one trial trains one sub-network and reports each epoch.

Read top to bottom: load the model, freeze all but the trial's units, AdamW with linear warmup
and decay, then per epoch train, evaluate on validation, report and checkpoint. A checkpoint
holds only the tensors that differ from the pre-trained model (trainable ones, and any newly
initialised ones such as the head) plus optimizer and schedule state, so it is small and quick.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ray import tune
from safetensors.torch import load_file, save_file
from sklearn.metrics import accuracy_score
from torch import nn

from spaces import load_taxonomy
from trainables._batches import eval_batches, train_batches
from trainables._data import Encoded, Split
from trainables._model import forward_inputs, load_model

WARMUP_FRACTION = 0.06  # of all steps; BERT fine-tuning's usual warmup


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a run shares; the searched choices (units, lr) are in `config`."""

    model: str
    num_labels: int
    max_epochs: int
    metric: str = "accuracy"
    batch_size: int = 32
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 1


def _device() -> torch.device:
    """The GPU Ray gave this trial (it sets CUDA_VISIBLE_DEVICES; fractions share one), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device):
    """bf16 autocast on GPU (master weights and optimizer stay fp32); plain fp32 on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()} if device.type != "cpu" else batch


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 128) -> dict[str, float]:
    """Accuracy and mean cross-entropy of `model` on a split (eval mode; the model's mode is restored).

    The loss moves before the accuracy does (a sub-network can learn for a while and still predict
    the majority class everywhere), which is what early-stopping decisions need.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predictions = np.empty(len(split), dtype=np.int64)
    loss_sum = 0.0
    for rows, batch in eval_batches(split, batch_size, forward_inputs(model)):
        with _autocast(device):
            output = model(**_to(batch, device))
        predictions[rows] = output.logits.argmax(-1).cpu().numpy()
        loss_sum += output.loss.float().item() * len(rows)
    model.train(was_training)
    return {"accuracy": float(accuracy_score(split.labels, predictions)), "loss": loss_sum / len(split)}


def save_state(directory: Path, model: nn.Module, names: list[str], extra: dict) -> None:
    """Write the named tensors (safetensors) and `extra` (torch.save) into a checkpoint folder."""
    params = dict(model.named_parameters())
    save_file({n: params[n].detach().cpu().contiguous() for n in names}, str(directory / "tensors.safetensors"))
    torch.save(extra, directory / "state.pt")


def load_tensors(model: nn.Module, path: str | Path) -> list[str]:
    """Load saved tensors into `model` by name; every saved name must exist in the model."""
    tensors = load_file(str(path))
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise ValueError(f"saved tensor {unknown[0]} is not a parameter of this model")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)
    return sorted(tensors)


def _linear_schedule(optimizer, total_steps: int):
    warmup = max(1, math.ceil(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_epoch(model: nn.Module, optimizer, schedule, split: Split, batch_size: int, seed: int) -> float:
    """One pass over `split`: forward, loss, backward, step. Returns the mean training loss.

    Raises FloatingPointError when the loss stops being finite, so the trial ends with the reason.
    """
    device = next(model.parameters()).device
    inputs = forward_inputs(model)
    model.train()
    loss_sum, batches = 0.0, 0
    for batch in train_batches(split, batch_size, seed, inputs):
        with _autocast(device):
            loss = model(**_to(batch, device)).loss
        if not torch.isfinite(loss):
            lr = optimizer.param_groups[0]["lr"]
            raise FloatingPointError(f"loss became {loss.item()} after {batches} steps (lr={lr:.2e})")
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum, batches = loss_sum + loss.item(), batches + 1
    return loss_sum / max(batches, 1)


def finetune(config: dict, data: Encoded, settings: TrialSettings) -> None:
    """Ray Tune function trainable. `config`: `units` (unit references), `lr`, `trainable_params`."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" line per epoch
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model, new_params = load_model(settings.model, settings.num_labels)
    device = _device()
    model.to(device)
    taxonomy = load_taxonomy(settings.model, settings.num_labels)
    trainable = taxonomy.apply(model, config["units"])
    trainable_params = taxonomy.count(config["units"])
    saved = [n for n in taxonomy.param_numel if n in set(trainable) | set(new_params)]

    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config["lr"], weight_decay=settings.weight_decay
    )
    steps_per_epoch = math.ceil(len(data.train) / settings.batch_size)
    schedule = _linear_schedule(optimizer, steps_per_epoch * settings.max_epochs)

    first_epoch = 1
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as directory:
            load_tensors(model, Path(directory) / "tensors.safetensors")
            state = torch.load(Path(directory) / "state.pt", weights_only=False, map_location=device)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        first_epoch = state["epoch"] + 1

    for epoch in range(first_epoch, settings.max_epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(model, optimizer, schedule, data.train, settings.batch_size,
                                 seed=settings.seed * 1000 + epoch)
        train_seconds = time.perf_counter() - started
        metrics = evaluate(model, data.validation)
        result = {
            settings.metric: metrics[settings.metric],
            "eval_loss": metrics["loss"],
            "trainable_params": trainable_params,
            "epoch": epoch,
            "train_loss": train_loss,
            "train_seconds": train_seconds,
            "epoch_seconds": time.perf_counter() - started,
        }
        with tempfile.TemporaryDirectory() as directory:
            save_state(
                Path(directory),
                model,
                saved,
                {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch},
            )
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
