"""A model's files, carried from the driver to every node that runs a trial: no hub, no shared disk.

The driver reads the files once (`ModelFiles.publish`: an alias's package folder, a local folder,
or a hub snapshot) and puts them into Ray's object store. A trial calls `local_folder()`: the
first trial on a node copies them, under a file lock, into a node-local cache keyed by their
content digest (`$TICKETSEARCH_MODEL_CACHE`, else the temp folder); every later trial on that
node finds them there. The digest of what was written is checked before the folder is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from spaces import model_file_list

CACHE_ENV = "TICKETSEARCH_MODEL_CACHE"
_COMPLETE = ".ticketsearch-complete"


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def folder_digest(folder: str | Path) -> str:
    """The content digest of a model folder's needed files (the one `ModelFiles` carries)."""
    folder = Path(folder)
    return _digest({name: (folder / name).read_bytes() for name in model_file_list(folder)})


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "ticketsearch-models")


@dataclass(frozen=True)
class ModelFiles:
    """A model's files in Ray's object store (`ref`: relative path -> bytes), named by their digest."""

    name: str  # what the user called the model (for messages)
    digest: str
    ref: Any  # ray.ObjectRef of {relative path: bytes}
    size: int  # bytes, all files

    @classmethod
    def publish(cls, name: str, folder: str | Path) -> ModelFiles:
        """Read the files `from_pretrained` needs from `folder` and put them into the object store (driver)."""
        import ray

        folder = Path(folder)
        files = {relative: (folder / relative).read_bytes() for relative in model_file_list(folder)}
        if not files:
            raise FileNotFoundError(f"model folder {folder} holds no model files")
        return cls(name, _digest(files), ray.put(files), sum(len(b) for b in files.values()))

    def local_folder(self) -> Path:
        """This node's copy of the files, written by the first trial on the node (any trial, under a lock)."""
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        target = root / self.digest[:24]
        if (target / _COMPLETE).is_file():
            return target
        with FileLock(str(root / f"{self.digest[:24]}.lock")):
            if (target / _COMPLETE).is_file():  # another trial wrote it while this one waited
                return target
            import ray

            files = ray.get(self.ref)
            if _digest(files) != self.digest:
                raise RuntimeError(f"model files of '{self.name}' arrived damaged (content digest differs)")
            partial = root / f"{self.digest[:24]}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            for relative, content in files.items():
                path = partial / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            if folder_digest(partial) != self.digest:
                shutil.rmtree(partial, ignore_errors=True)
                raise RuntimeError(f"model files of '{self.name}' were not written whole to {partial}")
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            (target / _COMPLETE).write_text(self.name + "\n")
        return target
