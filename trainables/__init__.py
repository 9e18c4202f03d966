"""What runs inside a trial: tasks and data, the fine-tuning loop, metrics, checkpoints.

`trainables` imports `spaces`, never `search`.
"""

from trainables._batches import eval_batches, train_batches
from trainables._data import Encoded, Split, Task, encode, load_task
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

__all__ = [
    "CLASSIFICATION_METRICS",
    "DETERMINISTIC",
    "FAILED",
    "REGRESSION_METRICS",
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
