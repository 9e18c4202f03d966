"""The fine-tuning trainable: one trial trains one sub-network and reports each epoch.

Read top to bottom: load the model, freeze all but the trial's units, AdamW with linear warmup
and decay, then per epoch train, evaluate on validation, report and checkpoint (`TrialRun`
holds these steps; `finetune` is the Ray trainable around it, and benchmarks use it directly). A checkpoint
holds only the tensors that differ from the pre-trained model (trainable ones, and any newly
initialised ones such as the head) plus optimizer and schedule state, so it is small and quick.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from spaces import TENSORS_FILE, load_taxonomy, ticket_parameters
from trainables._batches import eval_batches, train_batches
from trainables._data import Encoded, Split
from trainables._failures import ends_on_deterministic_failure
from trainables._metrics import compute_metrics
from trainables._model import forward_inputs, load_model
from trainables._model_files import ModelFiles
from trainables._prefix import FrozenPrefix, frozen_prefix_layers

WARMUP_FRACTION = 0.06  # of all steps; BERT fine-tuning's usual warmup
# With `lr_groups`, the newly initialised head trains at no less than this rate times the trial's
# `lr_scale` (what `spaces.reference_lr` gives the smallest sub-networks), the rest at the trial's `lr`.
# A rate that suits the pre-trained weights of a one-module sub-network (5e-4) leaves a fresh head
# nearly where it started after a few hundred steps. Raising LayerNorm gains and biases to this rate
# too was tried and rejected: it wrecked full fine-tuning (bench/small_subnets.py, docs/measurements.md).
SMALL_PARAM_LR = 5e-3


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
    prefix_cache: bool = True  # train from cached outputs of the frozen layers (see trainables._prefix)
    cache_dir: str | None = None  # where trials share those outputs (None: each trial keeps its own)
    pooling: str = "cls"  # what the head reads: `cls` or `mean` (spaces._pooling)
    lr_groups: bool = True  # the head at no less than SMALL_PARAM_LR x lr_scale (see above); search.run's default
    model_files: ModelFiles | None = None  # the model's files from the driver; `model` is then only a name
    fingerprint: str | None = None  # the driver's parameter fingerprint of the model: checked in every trial
    # the epochs after which a trial is validated (None: every epoch): where early stopping decides and the last.
    # Validating 1,024 rows costs about as much as a training epoch on 512 (docs/measurements.md), and an epoch
    # no decision reads is a learning curve's point, not the search's
    eval_epochs: tuple[int, ...] | None = None


def on_this_node(settings: TrialSettings) -> TrialSettings:
    """`settings` with `model` pointing at this node's copy of the driver's model files, when it has any."""
    if settings.model_files is None:
        return settings
    return dataclasses.replace(settings, model=str(settings.model_files.local_folder()))


def param_groups(model: nn.Module, head: set[str], lr: float, lr_scale: float, groups: bool) -> list[dict]:
    """AdamW parameter groups of the trainable parameters: one at `lr`, or with `groups`, the pre-trained
    ones at `lr` and the head (`head`: its parameter names) at max(lr, SMALL_PARAM_LR x lr_scale)."""
    trainable = [(n, p) for n, p in ticket_parameters(model).items() if p.requires_grad]
    if not groups:
        return [{"params": [p for _, p in trainable], "lr": lr}]
    body = [p for n, p in trainable if n not in head]
    out = [{"params": body, "lr": lr}] if body else []
    return out + [{"params": [p for n, p in trainable if n in head], "lr": max(lr, SMALL_PARAM_LR * lr_scale)}]


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
def predict(model: PreTrainedModel, split: Split, batch_size: int = 128,
            prefix: FrozenPrefix | None = None) -> tuple[np.ndarray, float]:
    """`model`'s outputs on every row of a split (logits [rows, classes]; [rows, 1] for regression), in
    row order, and the mean loss. Eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = np.empty((len(split), int(model.config.num_labels or 0)), dtype=np.float32)
    loss_sum = 0.0
    for rows, batch in eval_batches(split, batch_size, forward_inputs(model)):
        if prefix is not None:
            prefix.feed(split, rows, batch["input_ids"].shape[1])
        with _autocast(device):
            output = model(**_to(batch, device))
        outputs[rows] = output.logits.float().cpu().numpy()
        loss_sum += output.loss.float().item() * len(rows)
    model.train(was_training)
    return outputs, loss_sum / len(split)


def evaluate(
    model: PreTrainedModel, split: Split, batch_size: int = 128, prefix: FrozenPrefix | None = None
) -> dict[str, float]:
    """Every metric of the task kind (see `trainables._metrics`) and the mean loss of `model` on a split.

    A model with one output is a regression model. The loss moves before the metric does (a
    sub-network can learn for a while and still predict the majority class everywhere), which is
    what early-stopping decisions need.
    """
    outputs, loss = predict(model, split, batch_size, prefix)
    return {**compute_metrics(outputs, split.labels, model.config.num_labels == 1), "loss": loss}


def predict_saved(units: list[str], tensors: dict[str, torch.Tensor], split: Split,
                  settings: TrialSettings) -> np.ndarray:
    """Outputs on `split` of a trained sub-network: the pre-trained model with `tensors` (a checkpoint's
    trained tensors) loaded. What the final, once-only evaluation on held-out rows runs."""
    settings = on_this_node(settings)
    torch.set_num_threads(settings.threads)
    model, _ = load_model(settings.model, settings.num_labels, settings.pooling)
    taxonomy = load_taxonomy(settings.model, settings.num_labels, settings.pooling)
    taxonomy.apply(model, units)
    load_tensors(model, tensors)
    model.to(_device())  # type: ignore[arg-type]  # transformers' decorator hides nn.Module.to's signature
    return predict(model, split)[0]


def save_state(directory: Path, model: nn.Module | dict, names: list[str], extra: dict) -> None:
    """Write the named tensors (safetensors) and `extra` (torch.save) into a checkpoint folder.

    `model`: the model, or its parameters by name (a trial with a frozen prefix holds them so).
    """
    params = model if isinstance(model, dict) else ticket_parameters(model)
    save_file({n: params[n].detach().cpu().contiguous() for n in names}, str(directory / TENSORS_FILE))
    torch.save(extra, directory / "state.pt")


def load_tensors(model: nn.Module | dict, path: str | Path | dict) -> list[str]:
    """Load saved tensors (a safetensors file, or the tensors by name) into `model` (or its parameters by
    name: a ticket's names, spaces.ticket_parameters); every saved name must exist in it."""
    tensors = path if isinstance(path, dict) else load_file(str(path))
    params = model if isinstance(model, dict) else ticket_parameters(model)
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


def train_epoch(model: PreTrainedModel, optimizer, schedule, split: Split, batch_size: int, seed: int,
                prefix: FrozenPrefix | None = None) -> float:
    """One pass over `split`: forward, loss, backward, step. Returns the mean training loss.

    With `prefix`, each batch starts from the cached states of the frozen layers below the trained ones.
    Raises FloatingPointError when the loss stops being finite, so the trial ends with the reason
    (trainables._failures: not retried).
    """
    device = next(model.parameters()).device
    inputs = forward_inputs(model)
    model.train()
    loss_sum, batches = 0.0, 0
    for rows, batch in train_batches(split, batch_size, seed, inputs):
        if prefix is not None:
            prefix.feed(split, rows, batch["input_ids"].shape[1])
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


@dataclass
class TrialRun:
    """One sub-network being fine-tuned: the model, what is trained, the optimizer and its schedule."""

    model: PreTrainedModel
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    saved: list[str]  # tensors a checkpoint holds: the trained ones and any newly initialised (the head)
    trainable_params: int
    params: dict[str, nn.Parameter]  # by their names in the whole model (a frozen prefix swaps modules out)
    prefix: FrozenPrefix | None = None
    epoch: int = 0  # epochs done

    @classmethod
    def start(cls, config: dict, train_rows: int, settings: TrialSettings, device: torch.device) -> TrialRun:
        """Load the model, freeze all but `config["units"]`, AdamW with warmup and linear decay."""
        torch.manual_seed(settings.seed)
        model, new_params = load_model(settings.model, settings.num_labels, settings.pooling)
        model.to(device)  # type: ignore[arg-type]  # as above
        taxonomy = load_taxonomy(settings.model, settings.num_labels, settings.pooling)
        if settings.fingerprint and taxonomy.fingerprint != settings.fingerprint:
            raise RuntimeError(f"model at {settings.model} is not the driver's (parameter fingerprint "
                               f"{taxonomy.fingerprint}, expected {settings.fingerprint})")
        trainable = set(taxonomy.apply(model, config["units"]))  # LoRA units: PEFT's adapters added here
        params = ticket_parameters(model)
        prefix = None
        if settings.prefix_cache and (layers := frozen_prefix_layers(model, taxonomy)) > 0:
            prefix = FrozenPrefix(model, taxonomy, layers, settings.cache_dir, autocast=lambda: _autocast(device),
                                  model_key=f"{settings.model}:{taxonomy.fingerprint}:{settings.pooling}")
            prefix.install()
        groups = param_groups(model, set(taxonomy.head), config["lr"], float(config.get("lr_scale", 1.0)),
                              settings.lr_groups)
        optimizer = torch.optim.AdamW(groups, lr=config["lr"], weight_decay=settings.weight_decay)
        steps_per_epoch = math.ceil(train_rows / settings.batch_size)
        return cls(
            model=model,
            optimizer=optimizer,
            schedule=_linear_schedule(optimizer, steps_per_epoch * settings.max_epochs),
            saved=[n for n in params if n in trainable | set(new_params)],
            trainable_params=taxonomy.count(config["units"]),
            params=params,
            prefix=prefix,
        )

    def save(self, directory: Path) -> None:
        save_state(directory, self.params, self.saved, {
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(), "epoch": self.epoch,
            # The random state too (dropout): an epoch trained again after a restore is the same epoch.
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        })

    def restore(self, directory: Path) -> None:
        load_tensors(self.params, directory / TENSORS_FILE)
        device = next(self.model.parameters()).device
        state = torch.load(directory / "state.pt", weights_only=False, map_location=device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epoch = state["epoch"]
        if state.get("rng") is not None:  # checkpoints written before the random state was saved have none
            torch.set_rng_state(state["rng"].cpu())
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])

    def epochs(self, data: Encoded, settings: TrialSettings) -> Iterator[dict]:
        """Train the remaining epochs; after each, yield the epoch's result (validation metric first, on the epochs
        of `settings.eval_epochs`; on the others its metric and eval_loss are NaN)."""
        while self.epoch < settings.max_epochs:
            epoch = self.epoch + 1
            started = time.perf_counter()
            train_loss = train_epoch(self.model, self.optimizer, self.schedule, data.train, settings.batch_size,
                                     seed=settings.seed * 1000 + epoch, prefix=self.prefix)
            train_seconds = time.perf_counter() - started
            # not validated: NaN, which no decision reads (Ray checks that every result names the metric)
            scores: dict[str, float] = {settings.metric: math.nan, "eval_loss": math.nan}
            if settings.eval_epochs is None or epoch in settings.eval_epochs or epoch == settings.max_epochs:
                metrics = evaluate(self.model, data.validation, prefix=self.prefix)
                scores = {settings.metric: metrics[settings.metric],
                          **{k: v for k, v in metrics.items() if k != "loss"}}
                for name, split in data.extra.items():  # further validation splits: MNLI's mismatched
                    extra = evaluate(self.model, split, prefix=self.prefix)
                    scores.update({f"{k}_{name}": v for k, v in extra.items() if k != "loss"})
                scores["eval_loss"] = metrics["loss"]
            self.epoch = epoch
            yield {
                **scores,
                "trainable_params": self.trainable_params,
                "epoch": epoch,
                "train_loss": train_loss,
                "train_seconds": train_seconds,
                "epoch_seconds": time.perf_counter() - started,
            }


def finetune(config: dict, data: Encoded, settings: TrialSettings) -> None:
    """Ray Tune function trainable. `config`: `units` (unit references), `lr`, `trainable_params`.

    Resumes from the trial's checkpoint when Ray restarts it (a retry, or a restored run).
    """
    from ray import tune

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" line per epoch
    if "seed" in config:  # studies repeat a point over seeds
        settings = dataclasses.replace(settings, seed=int(config["seed"]))
    settings = on_this_node(settings)
    torch.set_num_threads(settings.threads)
    with ends_on_deterministic_failure():  # a NaN loss or an OOM ends the trial at once: a retry would repeat it
        run = TrialRun.start(config, len(data.train), settings, _device())
        if checkpoint := tune.get_checkpoint():
            with checkpoint.as_directory() as directory:
                run.restore(Path(directory))
        for result in run.epochs(data, settings):
            with tempfile.TemporaryDirectory() as directory:
                run.save(Path(directory))
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))


def time_epoch(config: dict, data: Encoded, settings: TrialSettings, steps: int = 2,
               eval_rows: int = 64) -> dict[str, float | str]:
    """Estimate one epoch's seconds of a sub-network by timing a few real steps on this worker's device.

    Times the start (loading, freezing, the first step and the first validation batch, which compute
    any frozen prefix: once per trial), then `steps` training steps and `eval_rows` validation rows,
    and scales them to a whole epoch. What `--dry-run` uses to say what a search will cost before it runs.
    """
    settings = on_this_node(settings)
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    device = _device()
    run = TrialRun.start(config, len(data.train), settings, device)
    inputs = forward_inputs(run.model)

    def all_batches():  # epoch after epoch: a training set of one batch still times as many steps as asked
        for epoch in itertools.count():
            yield from train_batches(data.train, settings.batch_size, settings.seed + epoch, inputs)

    batches = all_batches()

    def step() -> None:
        rows, batch = next(batches)
        if run.prefix is not None:
            run.prefix.feed(data.train, rows, batch["input_ids"].shape[1])
        with _autocast(device):
            loss = run.model(**_to(batch, device)).loss
        loss.backward()
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)

    validation = data.validation
    rows = min(len(validation), eval_rows)
    subset = Split(validation.input_ids[:rows], None if validation.token_type_ids is None
                   else validation.token_type_ids[:rows], validation.lengths[:rows], validation.labels[:rows])
    step()
    predict(run.model, subset, prefix=run.prefix)  # a frozen prefix of these rows is computed here, once
    setup = time.perf_counter() - started
    timed = min(steps, max(1, math.ceil(len(data.train) / settings.batch_size) - 1))
    started = time.perf_counter()
    for _ in range(timed):
        step()
    per_step = (time.perf_counter() - started) / timed
    started = time.perf_counter()
    predict(run.model, subset, prefix=run.prefix)
    eval_seconds = (time.perf_counter() - started) * len(validation) / rows
    steps_per_epoch = math.ceil(len(data.train) / settings.batch_size)
    return {"setup_seconds": setup, "step_seconds": per_step, "eval_seconds": eval_seconds,
            "epoch_seconds": steps_per_epoch * per_step + eval_seconds + setup / settings.max_epochs,
            "device": str(device), "trainable_params": run.trainable_params}
