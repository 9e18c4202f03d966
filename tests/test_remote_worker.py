"""A worker node that cannot see the project's files, nor the driver's model, nor any hub, still runs trials:
the code travels with the job, the model's files through Ray's object store."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import RayProcesses

REPO = Path(__file__).resolve().parent.parent

# Undo the editable install on the worker: no path entry and no import hook leads to the project.
HIDE_PROJECT = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != {str(REPO)!r}]
sys.path_importer_cache.clear()
"""

PROBE = """
import ray
ray.init(address="{address}")

@ray.remote(num_cpus=1)
def can_import():
    try:
        import spaces  # noqa: F401
        return "visible"
    except ImportError:
        return "hidden"

print(ray.get(can_import.remote()))
"""


# The driver's model folder is moved away while the trials run (the driver has read it by then): a trial
# that looked for it, rather than for the files the driver published, would fail.
DRIVER = """
import shutil, sys
import search.run as run

model, hidden = sys.argv[1], sys.argv[1] + ".hidden"
build = run.build_tuner


def build_and_hide(prep, callbacks):
    tuner = build(prep, callbacks)
    fit = tuner.fit

    def fit_without_the_folder():
        shutil.move(model, hidden)
        try:
            return fit()
        finally:
            shutil.move(hidden, model)

    tuner.fit = fit_without_the_folder
    return tuner


run.build_tuner = build_and_hide
sys.exit(run.main(sys.argv[2:]))
"""


def _prefill_hub_cache(cache, repo_id: str, folder: str) -> str:
    """A hub cache holding `folder` as `repo_id` (the layout huggingface_hub writes), as after a download."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    return str(snapshot)


@pytest.mark.timeout(600)
def test_worker_without_the_project_or_the_model_runs_trials(tmp_path, tiny_bert, tiny_decoders, text_csv):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_PROJECT)
    model = shutil.copytree(tiny_bert, tmp_path / "driver-only-model")  # exists on the driver's disk only
    node_cache, empty_hub = tmp_path / "node-cache", tmp_path / "worker-hub"
    hub_cache = tmp_path / "driver-hub"
    _prefill_hub_cache(hub_cache, "tiny-org/tiny-bert", tiny_bert)
    _prefill_hub_cache(hub_cache, "tiny-org/tiny-llama", tiny_decoders("llama"))  # a decoder, no padding token
    env = {"RAY_AUTH_MODE": "disabled", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    worker_env = {"PYTHONPATH": str(hide), "TICKETSEARCH_MODEL_CACHE": str(node_cache), "HF_HUB_OFFLINE": "1",
                  "HF_HOME": str(empty_hub), "HF_HUB_CACHE": str(empty_hub / "hub")}
    with RayProcesses() as cluster:
        address = cluster.start_head(num_cpus=0)  # trials can only run on the worker
        cluster.add_worker(num_cpus=2, env=worker_env, cwd="/")

        probe = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE.format(address=address))],
                               cwd="/", env=env, capture_output=True, text=True, timeout=180)
        assert probe.stdout.strip().splitlines()[-1] == "hidden", probe.stderr[-2000:]

        common = ["--address", address, "--data", str(text_csv), "--text-column", "review", "--label-column",
                  "sentiment", "--results-dir", str(tmp_path / "results"), "--num-samples", "2", "--max-epochs", "1",
                  "--train-size", "32", "--eval-size", "16", "--max-length", "16"]
        search = subprocess.run([sys.executable, "-c", DRIVER, str(model), "--model", str(model), "--name", "folder",
                                 *common], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        assert search.returncode == 0, search.stdout[-2000:] + search.stderr[-2000:]
        assert os.path.isdir(model)  # put back after the trials

        # a hub id, from the driver's hub cache only (the worker's is empty, and no hub is reachable)
        hub_env = {**env, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache)}
        search = subprocess.run([sys.executable, "-m", "search.run", "--model", "tiny-org/tiny-bert", "--name", "hub",
                                 *common], cwd=REPO, env=hub_env, capture_output=True, text=True, timeout=400)
        assert search.returncode == 0, search.stdout[-2000:] + search.stderr[-2000:]

        # a decoder's hub id reaches the worker the same way (its padding token set there, pooling `last`)
        search = subprocess.run([sys.executable, "-m", "search.run", "--model", "tiny-org/tiny-llama", "--name",
                                 "decoder", *common], cwd=REPO, env=hub_env, capture_output=True, text=True,
                                timeout=400)
        assert search.returncode == 0, search.stdout[-2000:] + search.stderr[-2000:]
    for name in ("folder", "hub", "decoder"):
        trials = pd.read_parquet(tmp_path / "results" / name / "trials.parquet")
        assert set(trials["status"]) == {"completed"} and trials["trial_id"].nunique() == 2
        assert trials["test_metric"].notna().any()  # the held-out scoring ran on the worker too
    # one node-local copy per model: the encoder's two runs name the same files (same digest), written once, whole
    copies = [p for p in node_cache.iterdir() if p.is_dir()]
    assert len(copies) == 2 and all((c / ".ticketsearch-complete").is_file() for c in copies)
    assert all(sorted(p.name for p in c.glob("*.safetensors")) == ["model.safetensors"] for c in copies)
    assert not any(empty_hub.rglob("*.safetensors"))  # the worker never used a hub cache
