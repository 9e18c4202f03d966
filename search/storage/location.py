"""Where a run's files live: a local folder, or remote storage with a local working copy.

`--results-dir` may be a folder or a URI that pyarrow opens (`s3://bucket/prefix`, `gs://...`,
`hdfs://...`; S3-compatible stores such as MinIO with `?endpoint_override=host:port&scheme=http`).

With a remote URI, Ray Tune writes the experiment state and every trial's results and checkpoints
there from whichever node runs the trial (no shared filesystem needed). The driver keeps its own
files (run.json, the Optuna journal, the scheduler's rungs, then trials.parquet, frontier.json and
the report) in a local working copy, `LOCAL_DIR/NAME`, and uploads them: run.json at the start,
the journal and the rungs just before each experiment snapshot Ray uploads (the append-only journal
then holds every trial the snapshot names), everything else at the end. `--resume URI/NAME`,
`search.report URI/NAME` and `search.export URI/NAME` download what they need into the working copy.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from search.storage.files import EXPORT_DIR, PREFIX_CACHE_DIR, RUN_FILE
from search.storage.run_info import RunInfo
from spaces import UsageError

LOCAL_ONLY = (PREFIX_CACHE_DIR, EXPORT_DIR)  # never uploaded: caches and what the user exports


def is_uri(text: str | os.PathLike) -> bool:
    """True for remote storage (`scheme://...`); plain paths and `file://` are local."""
    text = str(text)
    return "://" in text and not text.startswith("file://")


def _local_path(text: str | os.PathLike) -> Path:
    text = str(text)
    return Path(text.removeprefix("file://")).expanduser().resolve()


def join_uri(uri: str, *parts: str) -> str:
    """`uri` with path parts appended before its query (`s3://b/p?x=1` + `n` -> `s3://b/p/n?x=1`)."""
    s = urlsplit(uri)
    path = "/".join([s.path.rstrip("/"), *(p.strip("/") for p in parts)])
    return urlunsplit((s.scheme, s.netloc, path, s.query, s.fragment))


def split_uri(uri: str) -> tuple[str, str]:
    """(parent URI, last path part) of a run's URI, the query kept on the parent."""
    s = urlsplit(uri)
    parent, _, name = s.path.rstrip("/").rpartition("/")
    if not name:
        raise UsageError(f"{uri} names no run folder (expected SCHEME://BUCKET/PREFIX/NAME)")
    return urlunsplit((s.scheme, s.netloc, parent, s.query, s.fragment)), name


def open_uri(uri: str):
    """(pyarrow filesystem, path on it) for a URI; one clear error when pyarrow cannot open it."""
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError: unknown scheme, bad option
        raise UsageError(f"cannot open storage {uri}: {str(exc).splitlines()[0]}") from None


@contextmanager
def _reading(uri: str):
    """Storage that cannot be read (unreachable, no access) is one clear error, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UsageError(f"cannot read from {uri}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True)
class RunLocation:
    """A run folder: `local` is where the driver reads and writes; `remote` its URI, if any."""

    __module__ = "search"  # pickled by Ray with each run: a path that stays where the module moves

    name: str
    local: Path
    remote: str | None = None

    @classmethod
    def new(cls, results_dir: str, name: str, local_dir: str) -> RunLocation:
        if is_uri(results_dir):
            return cls(name, _local_path(local_dir) / name, join_uri(results_dir, name))
        return cls(name, _local_path(results_dir) / name)

    @classmethod
    def existing(cls, run: str, local_dir: str) -> RunLocation:
        """A run given by its folder or URI (resume, report, export). The local working copy of a
        run kept in remote storage stands for that run (its run.json names the storage)."""
        if is_uri(run):
            _, name = split_uri(run)
            return cls(name, _local_path(local_dir) / name, run)
        path = _local_path(run)
        try:
            results_dir = RunInfo.read(path).args.get("results_dir")
        except UsageError:
            results_dir = None
        if isinstance(results_dir, str) and is_uri(results_dir):
            return cls(path.name, path, join_uri(results_dir, path.name))
        return cls(path.name, path)

    @property
    def is_remote(self) -> bool:
        return self.remote is not None

    @property
    def _uri(self) -> str:
        """The remote URI, for the methods that only run on a remote run."""
        if self.remote is None:
            raise ValueError(f"run {self.name} has no remote storage")
        return self.remote

    @property
    def path(self) -> str:
        """The run as Ray Tune knows it (its experiment folder): the URI, or the local folder."""
        return self.remote if self.remote else str(self.local)

    @property
    def storage_path(self) -> str:
        """Ray's `storage_path`: the folder (or URI) that holds the run."""
        return split_uri(self.remote)[0] if self.remote else str(self.local.parent)

    @property
    def fs_path(self) -> str:
        """The run's folder on its filesystem, as Ray's result paths name it (no scheme, no query)."""
        return open_uri(self._uri)[1] if self.remote else str(self.local)

    def filesystem(self):
        """The run's pyarrow filesystem and its folder there: remote storage, or the local folder."""
        import pyarrow.fs as pafs

        return open_uri(self._uri) if self.is_remote else (pafs.LocalFileSystem(), str(self.local))

    def __str__(self) -> str:
        return self.path

    @property
    def quoted(self) -> str:
        """The run as a shell word (URIs with a query hold `&`)."""
        return shlex.quote(self.path)

    def prefix_cache_dir(self, folder: str) -> str:
        """Where trials share frozen-prefix outputs: in the run folder when every node sees it, else
        node-local (each node computes its own)."""
        if not self.is_remote:
            return str(self.local / folder)
        return str(Path(tempfile.gettempdir()) / "ticketsearch" / self.name / folder)

    # -- moving files between the working copy and remote storage ---------------------------
    def check_new(self) -> None:
        """One clear error, writing nothing, where a new run could not make its folder here: the folder
        exists (choose another name or resume it), or the results folder is a file or cannot be written."""
        if self.local.exists() or (self.is_remote and self.exists_remotely(RUN_FILE)):
            raise UsageError(f"run folder {self} exists: choose another --name, or --resume it")
        parent = self.local.parent
        while not parent.exists():  # the nearest folder that exists is where the run's folders get made
            parent = parent.parent
        what = "--local-dir" if self.is_remote else "--results-dir"
        if not parent.is_dir():
            raise UsageError(f"{what} {self.local.parent} is not a folder: {parent} is a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {self.local.parent} cannot be made: {parent} is not writable")

    def check_writable(self) -> None:
        """Create the remote run folder; one clear error if the storage cannot be written."""
        if not self.is_remote:
            return
        fs, path = open_uri(self._uri)
        try:
            fs.create_dir(path, recursive=True)
            with fs.open_output_stream(f"{path}/.ticketsearch-write-check") as f:
                f.write(b"ok\n")
            fs.delete_file(f"{path}/.ticketsearch-write-check")
        except OSError as exc:
            raise UsageError(f"cannot write to {self.remote}: {str(exc).splitlines()[0]}") from None

    def exists_remotely(self, name: str) -> bool:
        import pyarrow.fs as pafs

        fs, path = open_uri(self._uri)
        with _reading(self._uri):
            return fs.get_file_info(f"{path}/{name}").type == pafs.FileType.File

    def push(self, names: tuple[str, ...] | None = None) -> list[str]:
        """Upload the driver's files (by default every file of the working copy but the local-only
        folders) to the remote run folder; returns the names uploaded."""
        if not self.is_remote:
            return []
        import pyarrow.fs as pafs

        fs, root = open_uri(self._uri)
        if names is None:
            names = tuple(p.relative_to(self.local).as_posix() for p in sorted(self.local.rglob("*"))
                          if p.is_file() and p.relative_to(self.local).parts[0] not in LOCAL_ONLY
                          and not p.name.startswith("."))
        done = []
        for name in names:
            source = self.local / name
            if not source.is_file():
                continue
            target = f"{root}/{name}"
            fs.create_dir(target.rpartition("/")[0], recursive=True)
            pafs.copy_files(str(source), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
            done.append(name)
        return done

    def pull(self, names: tuple[str, ...]) -> list[str]:
        """Download the named files that exist remotely into the working copy (replacing older copies)."""
        if not self.is_remote:
            return []
        import pyarrow.fs as pafs

        fs, root = open_uri(self._uri)
        self.local.mkdir(parents=True, exist_ok=True)
        done = []
        for name in names:
            with _reading(self._uri):
                if fs.get_file_info(f"{root}/{name}").type != pafs.FileType.File:
                    continue
                target = self.local / name
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.download")
                pafs.copy_files(f"{root}/{name}", str(tmp), source_filesystem=fs,
                                destination_filesystem=pafs.LocalFileSystem())
            os.replace(tmp, target)
            done.append(name)
        return done

    def fetch_folder(self, relpath: str) -> Path:
        """A folder of the run (a trial's checkpoint) in the working copy, downloaded if remote."""
        target = self.local / relpath
        if not self.is_remote or target.is_dir():
            return target
        import pyarrow.fs as pafs

        fs, root = open_uri(self._uri)
        with _reading(self._uri):
            if fs.get_file_info(f"{root}/{relpath}").type != pafs.FileType.Directory:
                return target  # the caller reports what is missing
            tmp = target.with_name(f".{target.name}.download")
            tmp.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(f"{root}/{relpath}", str(tmp), source_filesystem=fs,
                            destination_filesystem=pafs.LocalFileSystem())
        os.replace(tmp, target)
        return target

    def prune_checkpoints(self, keep: set[str]) -> int:
        """Delete the run's trial checkpoints (`trial_*/checkpoint_*`) but those in `keep` (paths relative
        to the run folder), locally or in remote storage; returns how many were deleted."""
        import pyarrow.fs as pafs

        fs, root = self.filesystem()
        deleted = 0
        for trial in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
            if trial.type != pafs.FileType.Directory or not trial.base_name.startswith("trial_"):
                continue
            for folder in fs.get_file_info(pafs.FileSelector(trial.path)):
                name = f"{trial.base_name}/{folder.base_name}"
                if folder.type == pafs.FileType.Directory and folder.base_name.startswith("checkpoint_") \
                        and name not in keep:
                    fs.delete_dir(folder.path)
                    deleted += 1
        return deleted
