"""What can be trained: a model's module taxonomy, sub-network specs, exact counts, search spaces.

`spaces` imports neither `search` nor `trainables`.
"""

from spaces._errors import ArgumentParser, UsageError
from spaces._models import DEFAULT_MODEL, load_config, resolve_model
from spaces._space import (
    GRANULARITIES,
    SWITCH_VALUES,
    SpaceConfig,
    SubnetworkSpace,
    describe_switches,
    presets,
    reference_lr,
    refs_from_switches,
    switches,
)
from spaces._spec import Spec
from spaces._taxonomy import MODULE_TYPES, Taxonomy, Unit, load_taxonomy

__all__ = [
    "DEFAULT_MODEL",
    "GRANULARITIES",
    "MODULE_TYPES",
    "SWITCH_VALUES",
    "ArgumentParser",
    "SpaceConfig",
    "Spec",
    "SubnetworkSpace",
    "Taxonomy",
    "Unit",
    "UsageError",
    "describe_switches",
    "load_config",
    "load_taxonomy",
    "presets",
    "reference_lr",
    "refs_from_switches",
    "resolve_model",
    "switches",
]
