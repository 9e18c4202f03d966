"""Trained tickets scored on held-out rows by the driver: here, or as Ray tasks with the trials' resources.

A local run whose trials use no GPU scores in this process, on all of its CPUs (it has torch and the model at hand;
a Ray task would start a process and import both again, which costs more than scoring a small model); a cluster
run, or one with GPUs, scores as Ray tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from search.driver.prepare import Prepared
from trainables import predict_saved


def score_checkpoints(prep: Prepared, checkpoints: Mapping[Any, tuple[list, dict]], settings,
                      split=None) -> dict:
    """Outputs on `split` (the run's test rows by default) of each checkpoint: key -> (units, trained tensors)."""
    config = prep.config
    split = prep.data.test if split is None else split
    if config.address is None and not config.gpus_per_trial:
        return _score_here(checkpoints, split, settings)
    return _score_as_tasks(checkpoints, split, settings, config)


def _score_here(checkpoints: Mapping, test, settings) -> dict:
    import os

    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    here = dataclasses.replace(settings, model_files=None, threads=cpus)  # the driver's own copy of the model
    threads = torch.get_num_threads()
    try:
        return {trial_id: predict_saved(units, tensors, test, here)
                for trial_id, (units, tensors) in checkpoints.items()}
    finally:
        torch.set_num_threads(threads)


def _score_as_tasks(checkpoints: Mapping, test, settings, config) -> dict:
    import ray

    task = ray.remote(predict_saved).options(num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial,
                                             max_retries=config.max_failures)
    test_ref = ray.put(test)
    futures = {trial_id: task.remote(units, tensors, test_ref, settings)
               for trial_id, (units, tensors) in checkpoints.items()}
    return dict(zip(futures, ray.get(list(futures.values()))))
