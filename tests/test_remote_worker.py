"""A worker node that cannot see the project's files still runs trials: the code travels with the job."""

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


@pytest.mark.timeout(600)
def test_worker_without_the_project_runs_trials(tmp_path, tiny_bert, text_csv):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_PROJECT)
    env = {"RAY_AUTH_MODE": "disabled", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    with RayProcesses() as cluster:
        address = cluster.start_head(num_cpus=0)  # trials can only run on the worker
        cluster.add_worker(num_cpus=2, env={"PYTHONPATH": str(hide)}, cwd="/")

        probe = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE.format(address=address))],
                               cwd="/", env=env, capture_output=True, text=True, timeout=180)
        assert probe.stdout.strip().splitlines()[-1] == "hidden", probe.stderr[-2000:]

        args = [sys.executable, "-m", "search.run", "--address", address, "--model", tiny_bert,
                "--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
                "--results-dir", str(tmp_path / "results"), "--name", "remote", "--num-samples", "2",
                "--max-epochs", "1", "--train-size", "32", "--eval-size", "16", "--max-length", "16"]
        search = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
        assert search.returncode == 0, search.stdout[-2000:] + search.stderr[-2000:]
    trials = pd.read_parquet(tmp_path / "results" / "remote" / "trials.parquet")
    assert set(trials["status"]) == {"completed"} and trials["trial_id"].nunique() == 2
