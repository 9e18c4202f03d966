"""What can be trained: a model's module taxonomy, sub-network specs, exact counts, search spaces.

`spaces` imports neither `search` nor `trainables`. Names load on first use (PEP 562): the names a command line
offers and `SpaceConfig` (spaces._names), the errors and the argument parser import neither torch nor
transformers, so a driver reads its options before either loads (search.driver.hub).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaces._lazy import lazy_names

# each module and the public names it defines (PUBLIC=name: the module calls it otherwise)
_EXPORTS = {
    "spaces._cli": ("ArgumentParser", "did_you_mean", "run_cli", "UsageError"),
    "spaces._lora": ("LORA_ALPHA_RATIO", "lora_config", "merge_lora", "ticket_name", "ticket_parameters"),
    "spaces._models": ("load_config", "model_file_list", "model_folder", "resolve_model"),
    "spaces._names": ("DEFAULT_MODEL", "GRANULARITIES", "is_local", "LEGACY_POOLING", "LORA", "MODEL_ALIASES",
        "names_folder", "POOLINGS", "SpaceConfig", "SWITCH_VALUES", "WITHOUT_LORA"),
    "spaces._pooling": ("apply_pooling", "DECODERS", "folder_pooling", "resolve_pooling"),
    "spaces._space": ("beft_units", "describe_switches", "gap_selection", "kappa_choice", "kappa_units",
        "KappaChoice", "KEEP_FIRST", "presets", "reference_lr", "refs_from_switches", "SEARCH_REFERENCE_POINTS",
        "spread_selections", "start_points", "SubnetworkSpace", "switch_presets", "switches"),
    "spaces._spec": ("Spec", "SPEC_FILE", "TENSORS_FILE"),
    "spaces._taxonomy": ("DECODER_MODULE_TYPES", "load_taxonomy", "MODULE_TYPES", "Taxonomy", "Unit"),
}
__all__, __getattr__, __dir__ = lazy_names(__name__, _EXPORTS)

if TYPE_CHECKING:  # what editors and type checkers see; at run time the names load lazily (below)
    from spaces._cli import (
        ArgumentParser,
        UsageError,
        did_you_mean,
        run_cli,
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
        names_folder,
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
