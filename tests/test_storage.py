"""Results in S3: a run writes to an S3 bucket, its driver is killed, the head's disk is lost, and the
run is resumed from the bucket alone, on a "new head" (another local folder); then it is reported
and exported from the bucket.

The bucket is served by moto's S3 server in this process (real HTTP, the S3 API; no network, no
AWS account); pyarrow and Ray reach it through the URI's `endpoint_override`.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from conftest import RayProcesses, _free_port

from search import RunInfo, RunLocation
from search.storage.location import join_uri, open_uri, split_uri
from spaces import UsageError

REPO = Path(__file__).resolve().parent.parent
BUCKET = "ticketsearch-test"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}


# -- URIs and run locations (no server) ----------------------------------------------------------
def test_uris_keep_their_query_when_joined_and_split(tmp_path):
    base = "s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http"
    run = join_uri(base, "r1")
    assert run == "s3://bucket/runs/r1?endpoint_override=127.0.0.1:9000&scheme=http"
    assert split_uri(run) == (base, "r1")
    assert join_uri("s3://bucket", "a") == "s3://bucket/a"
    with pytest.raises(UsageError, match="names no run folder"):
        split_uri("s3://bucket")

    remote = RunLocation.new(base, "r1", str(tmp_path / "work"))
    assert remote.is_remote and remote.path == run and remote.storage_path == base
    assert remote.local == tmp_path / "work" / "r1" and remote.fs_path == "bucket/runs/r1"
    assert not remote.prefix_cache_dir("prefix_cache").startswith(str(tmp_path))  # node-local, not the working copy
    assert RunLocation.existing(run, str(tmp_path / "other")) == RunLocation("r1", tmp_path / "other" / "r1", run)

    local = RunLocation.new(str(tmp_path / "results"), "r1", "ignored")
    assert not local.is_remote and local.path == str(tmp_path / "results" / "r1")
    assert local.storage_path == str(tmp_path / "results") and local.push() == [] and local.pull(("run.json",)) == []
    assert RunLocation.existing(f"file://{tmp_path}/results/r1", "x").local == tmp_path / "results" / "r1"


def test_results_dir_defaults_to_the_environment(monkeypatch):
    from search import parse_args

    monkeypatch.delenv("TICKETSEARCH_RESULTS_DIR", raising=False)
    assert parse_args([]).results_dir == "results"
    monkeypatch.setenv("TICKETSEARCH_RESULTS_DIR", "s3://bucket/runs")  # what cluster.yaml sets on its nodes
    assert parse_args([]).results_dir == "s3://bucket/runs"
    assert parse_args(["--results-dir", "elsewhere"]).results_dir == "elsewhere"


# -- a real S3 API -------------------------------------------------------------------------------
@pytest.fixture()
def s3(monkeypatch):
    """An empty bucket on moto's S3 server; yields the results URI (the env carries the credentials)."""
    from moto.server import ThreadedMotoServer

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/runs?endpoint_override=127.0.0.1:{port}&scheme=http"
    finally:
        server.stop()


def _finished_trials(run_uri: str, max_epochs: int) -> dict[str, list[float]]:
    """Trials whose result log in the bucket reaches the full budget: trial id -> accuracy per epoch."""
    fs, root = open_uri(run_uri)
    done = {}
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.type != pafs.FileType.Directory or not info.base_name.startswith("trial_"):
            continue
        try:
            with fs.open_input_stream(f"{info.path}/result.json") as f:
                rows = [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
        except OSError:
            continue
        if rows and rows[-1].get("epoch") == max_epochs:
            done[info.base_name.removeprefix("trial_")] = [r["accuracy"] for r in rows]
    return done


def test_push_pull_and_fetch_against_s3(s3, tmp_path):
    location = RunLocation.new(s3, "r", str(tmp_path / "head1"))
    location.check_writable()
    location.local.mkdir(parents=True)
    (location.local / "run.json").write_text('{"a": 1}')
    (location.local / "prefix_cache").mkdir()
    (location.local / "prefix_cache" / "x.npy").write_bytes(b"big")
    (location.local / "trial_1" / "checkpoint_000000").mkdir(parents=True)
    (location.local / "trial_1" / "checkpoint_000000" / "t.bin").write_bytes(b"\0" * 7_000_000)  # multipart
    assert sorted(location.push()) == ["run.json", "trial_1/checkpoint_000000/t.bin"]  # never the cache
    assert location.exists_remotely("run.json") and not location.exists_remotely("prefix_cache/x.npy")

    elsewhere = RunLocation.existing(location.remote, str(tmp_path / "head2"))
    assert elsewhere.pull(("run.json", "frontier.json")) == ["run.json"]  # what exists
    assert RunLocation.existing(str(location.local), "x") == RunLocation("r", location.local)  # run.json: no URI
    RunInfo(args={"results_dir": s3}, model="m", task="t", metric="accuracy", num_labels=2, max_epochs=1,
            total_params=1, fingerprint="f").write(location.local)
    assert RunLocation.existing(str(location.local), "x") == location  # a working copy stands for its run
    assert json.loads((elsewhere.local / "run.json").read_text()) == {"a": 1}
    folder = elsewhere.fetch_folder("trial_1/checkpoint_000000")
    assert (folder / "t.bin").stat().st_size == 7_000_000
    assert not elsewhere.fetch_folder("trial_9/checkpoint_000000").exists()

    (location.local / "trial_1" / "checkpoint_000001").mkdir()
    (location.local / "trial_1" / "checkpoint_000001" / "t.bin").write_bytes(b"1")
    location.push(("trial_1/checkpoint_000001/t.bin",))
    assert location.prune_checkpoints({"trial_1/checkpoint_000001"}) == 1  # in the bucket
    fs, root = open_uri(location.remote)
    assert fs.get_file_info(f"{root}/trial_1/checkpoint_000000").type == pafs.FileType.NotFound
    assert fs.get_file_info(f"{root}/trial_1/checkpoint_000001/t.bin").type == pafs.FileType.File


def test_unwritable_or_unknown_storage_is_one_clear_error(s3, tiny_bert, text_csv, tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    common = ["--model", tiny_bert, "--data", str(text_csv), "--text-column", "review", "--label-column",
              "sentiment", "--local-dir", str(tmp_path), "--num-samples", "1", "--train-size", "16"]
    missing_bucket = s3.replace(f"s3://{BUCKET}/", "s3://no-such-bucket-here/")
    for results, message in ((missing_bucket, "error: cannot write to s3://no-such-bucket-here/"),
                             ("nosuch://bucket/x", "error: cannot open storage nosuch://bucket/x")):
        done = subprocess.run([sys.executable, "-m", "search.run", "--results-dir", results, *common],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith(message), done.stderr[-2000:]
    # Storage nobody answers at (the S3 client retries for some seconds first): resume, report, export.
    unreachable = f"s3://{BUCKET}/runs/r?endpoint_override=127.0.0.1:{_free_port()}&scheme=http"
    for command in (["search.run", "--resume", unreachable], ["search.report", unreachable],
                    ["search.export", unreachable]):
        done = subprocess.run([sys.executable, "-m", *command, "--local-dir", str(tmp_path)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.strip().splitlines()[-1].startswith(f"error: cannot read from {unreachable}")


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_bert, text_csv, tmp_path_factory):
    """A run in S3 whose driver is killed after a trial finished and whose head's disk is then lost,
    resumed from the bucket alone on a new head. Yields what the tests below look at."""
    from moto.server import ThreadedMotoServer

    tmp_path = tmp_path_factory.mktemp("killed")
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket=BUCKET)
        s3 = f"s3://{BUCKET}/runs?endpoint_override=127.0.0.1:{port}&scheme=http"
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
        with RayProcesses() as cluster:
            address = cluster.start_head(num_cpus=2, env=AWS_ENV)  # trials upload from the node's processes
            run_uri = join_uri(s3, "killed")
            head1, head2 = tmp_path / "head1", tmp_path / "head2"
            args = [sys.executable, "-m", "search.run", "--address", address, "--model", tiny_bert,
                    "--data", str(text_csv), "--text-column", "review", "--label-column", "sentiment",
                    "--results-dir", s3, "--local-dir", str(head1), "--name", "killed", "--num-samples", "6",
                    "--max-epochs", "3", "--train-size", "96", "--eval-size", "24",
                    "--max-length", "16", "--batch-size", "8"]
            driver = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300
            while not _finished_trials(run_uri, 3) and time.monotonic() < deadline:
                assert driver.poll() is None, driver.stdout.read().decode()[-3000:]
                time.sleep(0.5)
            # Ray uploads a snapshot file by file: kill a second later, between snapshots (README).
            time.sleep(1)
            before = _finished_trials(run_uri, 3)
            assert before, "no trial finished before the deadline"
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
            fs, root = open_uri(run_uri)
            assert fs.get_file_info(f"{root}/frontier.json").type == pafs.FileType.NotFound
            shutil.rmtree(head1)  # the head node is gone: only the bucket remains

            resumed = subprocess.run([sys.executable, "-m", "search.run", "--resume", run_uri, "--address",
                                      address, "--local-dir", str(head2)], cwd=REPO, env=env, capture_output=True,
                                     text=True, timeout=400)
            assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        with fs.open_input_file(f"{root}/trials.parquet") as f:  # the bucket's copy, not the working copy
            trials = pq.read_table(f).to_pandas()
        yield {"uri": run_uri, "fs": fs, "root": root, "head1": head1, "head2": head2, "before": before,
               "trials": trials, "env": env, "tmp": tmp_path}
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.timeout(600)
def test_a_resumed_run_keeps_every_finished_trial_and_runs_every_planned_one(killed_and_resumed):
    run = killed_and_resumed
    trials = run["trials"]
    assert trials["trial_id"].nunique() == 6  # every planned trial, once
    assert not trials.duplicated(["trial_id", "epoch"]).any()
    assert set(trials.loc[trials["final"], "status"]) == {"completed"}  # 6 reference points: never stopped
    for trial_id, accuracies in run["before"].items():  # finished before the kill: untouched
        rows = trials[trials["trial_id"] == trial_id].sort_values("epoch")
        assert rows["metric"].tolist() == pytest.approx(accuracies, nan_ok=True)  # NaN: an epoch not validated
    assert not run["head1"].exists()  # the resumed driver's journal and rungs live in its own working copy


def test_the_bucket_holds_the_finished_run_and_its_whole_study(killed_and_resumed):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    run = killed_and_resumed
    fs, root = run["fs"], run["root"]
    for name in ("frontier.json", "report.html", "optuna.journal", "scheduler_state.json", "run.json"):
        assert fs.get_file_info(f"{root}/{name}").type == pafs.FileType.File, name
    journal = run["tmp"] / "optuna.journal"  # the bucket's journal, read back as a study
    journal.write_bytes(fs.open_input_stream(f"{root}/optuna.journal").read())
    study = optuna.load_study(study_name="killed", storage=JournalStorage(JournalFileBackend(str(journal))))
    assert len(study.trials) == 6
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    finals = run["trials"][run["trials"]["final"]]
    assert sorted(t.values[0] for t in study.trials) == pytest.approx(sorted(finals["metric"]))
    assert pd.read_parquet(run["head2"] / "killed" / "trials.parquet").equals(run["trials"])


def test_the_resumed_run_is_reported_from_the_bucket_and_exported_from_the_new_head(killed_and_resumed):
    run = killed_and_resumed
    # Reported on a third machine from the bucket; exported from the new head's working copy, which
    # holds no checkpoint: the chosen one comes from the bucket.
    elsewhere = run["tmp"] / "laptop"
    for command in (["search.report", run["uri"], "--local-dir", str(elsewhere)],
                    ["search.export", str(run["head2"] / "killed")]):
        done = subprocess.run([sys.executable, "-m", *command], cwd=REPO, env=run["env"], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (elsewhere / "killed" / "report.html").is_file()
    exported = list((run["head2"] / "killed" / "export").glob("trial_*/spec.json"))
    assert len(exported) == 1 and (exported[0].parent / "tensors.safetensors").is_file()
    best = json.loads((run["head2"] / "killed" / "frontier.json").read_text())["points"]
    assert json.loads(exported[0].read_text())["source"]["trial"] in {p["trial_id"] for p in best}


def test_run_json_is_one_typed_versioned_record(tmp_path):
    """search.RunInfo writes run.json and reads it back; one written before it had a version (or pooling) reads
    with what runs then did; a field a later version adds is dropped here; a file that is not a run's is one line."""
    from spaces import UsageError

    info = RunInfo(args={"results_dir": str(tmp_path)}, model="m", task="t", metric="accuracy", num_labels=2,
                   max_epochs=3, total_params=10, fingerprint="f", pooling="mean", reference_points={"full": {}})
    info.write(tmp_path)
    assert RunInfo.read(tmp_path) == info and info.version == 1
    old = {k: v for k, v in json.loads((tmp_path / "run.json").read_text()).items() if k not in ("version", "pooling")}
    (tmp_path / "run.json").write_text(json.dumps({**old, "added_later": 1}))
    read = RunInfo.read(tmp_path)
    assert (read.version, read.pooling, read.metric) == (0, "cls", "accuracy")
    (tmp_path / "run.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(UsageError, match="not a ticketsearch run.json"):
        RunInfo.read(tmp_path)
    with pytest.raises(UsageError, match="no run.json"):
        RunInfo.read(tmp_path / "nothing")


def test_a_finished_search_is_read_as_finished_from_the_bucket(s3, tmp_path):
    """A search that ended before --num-samples (a spent --trial-seconds budget) says so in Ray's saved
    search-generator state; read from remote storage, where a run with a storage URI keeps it."""
    import ray.cloudpickle as cloudpickle

    from search import compat

    location = RunLocation.new(s3, "budgeted", str(tmp_path / "head"))
    location.check_writable()
    location.local.mkdir(parents=True)
    for session, finished in (("2026-01-01_00-00-00", False), ("2026-01-02_00-00-00", True)):
        (location.local / f"search_gen_state-{session}.json").write_bytes(
            cloudpickle.dumps({"counter": 3, "total_samples": 100_000, "finished": finished}))
    location.push()
    assert compat.search_finished(*location.filesystem())  # the newest session's state, in the bucket
    assert not compat.search_finished(*RunLocation.new(s3, "elsewhere", str(tmp_path / "h2")).filesystem())
