"""What runs inside a trial: tasks and data, the fine-tuning loop, metrics, checkpoints.

`trainables` imports `spaces`, never `search`.
"""

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
from trainables._metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, compute_metrics
from trainables._model import load_model, load_tokenizer
from trainables._model_files import ModelFiles, folder_digest
from trainables._replay import ReplayTable, replay, units_key

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "DETERMINISTIC",
    "FAILED",
    "ends_on_deterministic_failure",
    "Encoded",
    "ModelFiles",
    "ReplayTable",
    "Split",
    "Task",
    "TrialRun",
    "TrialSettings",
    "compute_metrics",
    "encode",
    "evaluate",
    "finetune",
    "folder_digest",
    "load_model",
    "load_task",
    "load_tensors",
    "load_tokenizer",
    "predict",
    "predict_saved",
    "replay",
    "save_state",
    "time_epoch",
    "train_epoch",
    "units_key",
]
