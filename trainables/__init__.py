"""What runs inside a trial: tasks and data, the fine-tuning loop, metrics, checkpoints.

`trainables` imports `spaces`, never `search`. Names load on first use (PEP 562): a replayed trial
(`trainables.replay`, `search.run --replay`) imports neither torch nor transformers, so a Ray worker that
only replays holds about a fifth of the memory, and many run at once on one machine (bench/ray_scale.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces._lazy import lazy_names

# each module and the public names it defines (PUBLIC=name: the module calls it otherwise)
_EXPORTS = {
    "trainables._batches": ("eval_batches", "train_batches"),
    "trainables._data": ("encode", "Encoded", "load_task", "rotten_tomatoes_frame", "Split", "SPLIT_SEED", "Task",
        "train_test_split"),
    "trainables._failures": ("DETERMINISTIC", "ends_on_deterministic_failure", "FAILED"),
    "trainables._finetune": ("evaluate", "finetune", "load_tensors", "predict", "predict_saved", "save_state",
        "time_epoch", "train_epoch", "TrialRun", "TrialSettings"),
    "trainables._metrics": ("CLASSIFICATION_METRICS", "compute_metrics", "constant_baseline", "REGRESSION_METRICS"),
    "trainables._model": ("forward_inputs", "load_model", "load_tokenizer"),
    "trainables._model_files": ("folder_digest", "ModelFiles"),
    "trainables._prefix": ("frozen_prefix_layers", "FrozenPrefix", "PREFIX_CACHE_FAMILIES=SUPPORTED"),
    "trainables._replay": ("replay", "ReplayTable", "units_key"),
    "trainables._tasks": ("GLUE", "TASKS"),
}
__all__, __getattr__, __dir__ = lazy_names(__name__, _EXPORTS)

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
