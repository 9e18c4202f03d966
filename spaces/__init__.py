"""What can be trained: a model's module taxonomy, sub-network specs, exact counts, search spaces.

`spaces` imports neither `search` nor `trainables`. Names load on first use (PEP 562): the names a command line
offers and `SpaceConfig` (spaces._names), the errors and the argument parser import neither torch nor
transformers, so a driver reads its options before either loads (search.driver.hub).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# name -> the module that defines it
_WHERE = {
    "ArgumentParser": "spaces._cli",
    "run_cli": "spaces._cli",
    "UsageError": "spaces._errors",
    "LORA_ALPHA_RATIO": "spaces._lora",
    "lora_config": "spaces._lora",
    "merge_lora": "spaces._lora",
    "ticket_name": "spaces._lora",
    "ticket_parameters": "spaces._lora",
    "is_local": "spaces._names",
    "load_config": "spaces._models",
    "model_file_list": "spaces._models",
    "model_folder": "spaces._models",
    "resolve_model": "spaces._models",
    "DEFAULT_MODEL": "spaces._names",
    "GRANULARITIES": "spaces._names",
    "LEGACY_POOLING": "spaces._names",
    "LORA": "spaces._names",
    "MODEL_ALIASES": "spaces._names",
    "POOLINGS": "spaces._names",
    "SWITCH_VALUES": "spaces._names",
    "SpaceConfig": "spaces._names",
    "WITHOUT_LORA": "spaces._names",
    "DECODERS": "spaces._pooling",
    "apply_pooling": "spaces._pooling",
    "folder_pooling": "spaces._pooling",
    "resolve_pooling": "spaces._pooling",
    "KappaChoice": "spaces._space",
    "beft_units": "spaces._space",
    "kappa_choice": "spaces._space",
    "kappa_units": "spaces._space",
    "KEEP_FIRST": "spaces._space",
    "SEARCH_REFERENCE_POINTS": "spaces._space",
    "SubnetworkSpace": "spaces._space",
    "describe_switches": "spaces._space",
    "gap_selection": "spaces._space",
    "presets": "spaces._space",
    "reference_lr": "spaces._space",
    "refs_from_switches": "spaces._space",
    "spread_selections": "spaces._space",
    "start_points": "spaces._space",
    "switch_presets": "spaces._space",
    "switches": "spaces._space",
    "SPEC_FILE": "spaces._spec",
    "Spec": "spaces._spec",
    "TENSORS_FILE": "spaces._spec",
    "DECODER_MODULE_TYPES": "spaces._taxonomy",
    "MODULE_TYPES": "spaces._taxonomy",
    "Taxonomy": "spaces._taxonomy",
    "Unit": "spaces._taxonomy",
    "load_taxonomy": "spaces._taxonomy",
}

__all__ = [
    "ArgumentParser",
    "DECODERS",
    "DECODER_MODULE_TYPES",
    "DEFAULT_MODEL",
    "GRANULARITIES",
    "KEEP_FIRST",
    "KappaChoice",
    "SEARCH_REFERENCE_POINTS",
    "LEGACY_POOLING",
    "LORA",
    "LORA_ALPHA_RATIO",
    "MODEL_ALIASES",
    "MODULE_TYPES",
    "POOLINGS",
    "SPEC_FILE",
    "SWITCH_VALUES",
    "SpaceConfig",
    "Spec",
    "SubnetworkSpace",
    "TENSORS_FILE",
    "Taxonomy",
    "WITHOUT_LORA",
    "Unit",
    "UsageError",
    "apply_pooling",
    "beft_units",
    "describe_switches",
    "folder_pooling",
    "gap_selection",
    "is_local",
    "kappa_choice",
    "kappa_units",
    "load_config",
    "load_taxonomy",
    "lora_config",
    "merge_lora",
    "model_file_list",
    "model_folder",
    "presets",
    "reference_lr",
    "refs_from_switches",
    "resolve_model",
    "resolve_pooling",
    "run_cli",
    "spread_selections",
    "start_points",
    "switch_presets",
    "switches",
    "ticket_name",
    "ticket_parameters",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily (below)
    from spaces._cli import (
        ArgumentParser,
        run_cli,
    )
    from spaces._errors import (
        UsageError,
    )
    from spaces._lora import (
        LORA_ALPHA_RATIO,
        lora_config,
        merge_lora,
        ticket_name,
        ticket_parameters,
    )
    from spaces._models import (
        load_config,
        model_file_list,
        model_folder,
        resolve_model,
    )
    from spaces._names import (
        DEFAULT_MODEL,
        GRANULARITIES,
        LEGACY_POOLING,
        LORA,
        MODEL_ALIASES,
        POOLINGS,
        SWITCH_VALUES,
        WITHOUT_LORA,
        SpaceConfig,
        is_local,
    )
    from spaces._pooling import (
        DECODERS,
        apply_pooling,
        folder_pooling,
        resolve_pooling,
    )
    from spaces._space import (
        KEEP_FIRST,
        SEARCH_REFERENCE_POINTS,
        KappaChoice,
        SubnetworkSpace,
        beft_units,
        describe_switches,
        gap_selection,
        kappa_choice,
        kappa_units,
        presets,
        reference_lr,
        refs_from_switches,
        spread_selections,
        start_points,
        switch_presets,
        switches,
    )
    from spaces._spec import (
        SPEC_FILE,
        TENSORS_FILE,
        Spec,
    )
    from spaces._taxonomy import (
        DECODER_MODULE_TYPES,
        MODULE_TYPES,
        Taxonomy,
        Unit,
        load_taxonomy,
    )


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'spaces' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
