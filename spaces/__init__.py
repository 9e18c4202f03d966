"""What can be trained: a model's module taxonomy, sub-network specs, exact counts, search spaces.

`spaces` imports neither `search` nor `trainables`.
"""

from spaces._cli import ArgumentParser, run_cli
from spaces._errors import UsageError
from spaces._lora import LORA, LORA_ALPHA_RATIO, lora_config, merge_lora, ticket_name, ticket_parameters
from spaces._models import DEFAULT_MODEL, is_local, load_config, model_file_list, model_folder, resolve_model
from spaces._pooling import DECODERS, POOLINGS, apply_pooling, folder_pooling, resolve_pooling
from spaces._space import (
    GRANULARITIES,
    KEEP_FIRST,
    SWITCH_VALUES,
    SpaceConfig,
    SubnetworkSpace,
    describe_switches,
    gap_selection,
    presets,
    reference_lr,
    refs_from_switches,
    spread_selections,
    start_points,
    switch_presets,
    switches,
)
from spaces._spec import LEGACY_POOLING, SPEC_FILE, TENSORS_FILE, Spec
from spaces._taxonomy import DECODER_MODULE_TYPES, MODULE_TYPES, Taxonomy, Unit, load_taxonomy

__all__ = [
    "DECODERS",
    "DECODER_MODULE_TYPES",
    "DEFAULT_MODEL",
    "GRANULARITIES",
    "KEEP_FIRST",
    "LEGACY_POOLING",
    "LORA",
    "LORA_ALPHA_RATIO",
    "MODULE_TYPES",
    "POOLINGS",
    "SPEC_FILE",
    "SWITCH_VALUES",
    "TENSORS_FILE",
    "ArgumentParser",
    "apply_pooling",
    "folder_pooling",
    "resolve_pooling",
    "SpaceConfig",
    "Spec",
    "SubnetworkSpace",
    "Taxonomy",
    "Unit",
    "UsageError",
    "describe_switches",
    "is_local",
    "load_config",
    "model_file_list",
    "model_folder",
    "load_taxonomy",
    "lora_config",
    "merge_lora",
    "ticket_name",
    "ticket_parameters",
    "presets",
    "reference_lr",
    "refs_from_switches",
    "resolve_model",
    "run_cli",
    "gap_selection",
    "spread_selections",
    "start_points",
    "switch_presets",
    "switches",
]
