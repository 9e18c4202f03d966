"""What runs inside a trial: tasks and data, the fine-tuning loop, metrics, checkpoints.

`trainables` imports `spaces`, never `search`.
"""

from trainables._data import Encoded, Split, Task, encode, load_task
from trainables._finetune import TrialRun, TrialSettings, evaluate, finetune, load_tensors, save_state, train_epoch
from trainables._model import load_model, load_tokenizer
from trainables._replay import ReplayTable, replay, units_key

__all__ = [
    "Encoded",
    "ReplayTable",
    "Split",
    "Task",
    "TrialRun",
    "TrialSettings",
    "encode",
    "evaluate",
    "finetune",
    "load_model",
    "load_task",
    "load_tensors",
    "load_tokenizer",
    "replay",
    "save_state",
    "train_epoch",
    "units_key",
]
