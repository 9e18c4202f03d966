"""What runs inside a trial: tasks and data, the fine-tuning loop, metrics, checkpoints.

`trainables` imports `spaces`, never `search`. Names load on first use (PEP 562): a replayed trial
(`trainables.replay`, `search.run --replay`) imports neither torch nor transformers, so a Ray worker that
only replays holds about a fifth of the memory, and many run at once on one machine (bench/ray_scale.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# name -> (module, its name there)
_WHERE = {
    "eval_batches": ("trainables._batches", "eval_batches"),
    "train_batches": ("trainables._batches", "train_batches"),
    "Encoded": ("trainables._data", "Encoded"),
    "Split": ("trainables._data", "Split"),
    "Task": ("trainables._data", "Task"),
    "encode": ("trainables._data", "encode"),
    "load_task": ("trainables._data", "load_task"),
    "SPLIT_SEED": ("trainables._data", "SPLIT_SEED"),
    "GLUE": ("trainables._tasks", "GLUE"),
    "TASKS": ("trainables._tasks", "TASKS"),
    "rotten_tomatoes_frame": ("trainables._data", "rotten_tomatoes_frame"),
    "train_test_split": ("trainables._data", "train_test_split"),
    "DETERMINISTIC": ("trainables._failures", "DETERMINISTIC"),
    "FAILED": ("trainables._failures", "FAILED"),
    "ends_on_deterministic_failure": ("trainables._failures", "ends_on_deterministic_failure"),
    "TrialRun": ("trainables._finetune", "TrialRun"),
    "TrialSettings": ("trainables._finetune", "TrialSettings"),
    "evaluate": ("trainables._finetune", "evaluate"),
    "finetune": ("trainables._finetune", "finetune"),
    "load_tensors": ("trainables._finetune", "load_tensors"),
    "predict": ("trainables._finetune", "predict"),
    "predict_saved": ("trainables._finetune", "predict_saved"),
    "save_state": ("trainables._finetune", "save_state"),
    "time_epoch": ("trainables._finetune", "time_epoch"),
    "train_epoch": ("trainables._finetune", "train_epoch"),
    "CLASSIFICATION_METRICS": ("trainables._metrics", "CLASSIFICATION_METRICS"),
    "REGRESSION_METRICS": ("trainables._metrics", "REGRESSION_METRICS"),
    "compute_metrics": ("trainables._metrics", "compute_metrics"),
    "constant_baseline": ("trainables._metrics", "constant_baseline"),
    "forward_inputs": ("trainables._model", "forward_inputs"),
    "load_model": ("trainables._model", "load_model"),
    "load_tokenizer": ("trainables._model", "load_tokenizer"),
    "ModelFiles": ("trainables._model_files", "ModelFiles"),
    "folder_digest": ("trainables._model_files", "folder_digest"),
    "FrozenPrefix": ("trainables._prefix", "FrozenPrefix"),
    "PREFIX_CACHE_FAMILIES": ("trainables._prefix", "SUPPORTED"),
    "frozen_prefix_layers": ("trainables._prefix", "frozen_prefix_layers"),
    "ReplayTable": ("trainables._replay", "ReplayTable"),
    "replay": ("trainables._replay", "replay"),
    "units_key": ("trainables._replay", "units_key"),
}

__all__ = [
    "CLASSIFICATION_METRICS",
    "DETERMINISTIC",
    "FAILED",
    "GLUE",
    "REGRESSION_METRICS",
    "SPLIT_SEED",
    "TASKS",
    "compute_metrics",
    "constant_baseline",
    "encode",
    "Encoded",
    "ends_on_deterministic_failure",
    "eval_batches",
    "evaluate",
    "finetune",
    "folder_digest",
    "forward_inputs",
    "frozen_prefix_layers",
    "FrozenPrefix",
    "load_model",
    "load_task",
    "rotten_tomatoes_frame",
    "train_test_split",
    "load_tensors",
    "load_tokenizer",
    "ModelFiles",
    "PREFIX_CACHE_FAMILIES",
    "predict",
    "predict_saved",
    "replay",
    "ReplayTable",
    "save_state",
    "Split",
    "Task",
    "time_epoch",
    "train_batches",
    "train_epoch",
    "TrialRun",
    "TrialSettings",
    "units_key",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily (below)
    from trainables._batches import eval_batches, train_batches
    from trainables._data import (
        SPLIT_SEED,
        Encoded,
        Split,
        Task,
        encode,
        load_task,
        rotten_tomatoes_frame,
        train_test_split,
    )
    from trainables._failures import DETERMINISTIC, FAILED, ends_on_deterministic_failure
    from trainables._finetune import (
        TrialRun,
        TrialSettings,
        evaluate,
        finetune,
        load_tensors,
        predict,
        predict_saved,
        save_state,
        time_epoch,
        train_epoch,
    )
    from trainables._metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, compute_metrics, constant_baseline
    from trainables._model import forward_inputs, load_model, load_tokenizer
    from trainables._model_files import ModelFiles, folder_digest
    from trainables._prefix import SUPPORTED as PREFIX_CACHE_FAMILIES
    from trainables._prefix import FrozenPrefix, frozen_prefix_layers
    from trainables._replay import ReplayTable, replay, units_key
    from trainables._tasks import GLUE, TASKS


def __getattr__(name: str):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'trainables' has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
