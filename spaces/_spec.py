"""Sub-network specs: a small versioned JSON document that names what is trainable.

Version 1 fields:

- `format`: always "ticketsearch.spec"; `version`: 1.
- `model`: `name` (alias, folder or hub id), `model_type`, `architecture`, `num_labels`,
  `fingerprint`, a hash of the names and shapes of the model's non-head parameters, and `pooling`
  (`cls` or `mean`, spaces._pooling; absent in specs written before it existed: `cls`).
- `units`: unit references (`"3.query"`, `"5.ffn.norm:bias"`, `"embeddings"`).
- `parameters`: the resolved trainable parameter names (head included), model order.
- `trainable_params`, `total_params`: exact counts.
- `metrics`: what the search measured for this sub-network (e.g. `{"accuracy": 0.81}`).
- `source`: where it came from (`run`, `trial`, `epoch`), `hyperparameters` (`lr`, ...; with LoRA units,
  `lora_alpha_ratio`: each adapter's alpha is this times its rank).
- `tensors`: file name of the trained tensors (safetensors) next to the spec, or null.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from spaces._cli import UsageError
from spaces._lora import LORA_ALPHA_RATIO
from spaces._names import LEGACY_POOLING
from spaces._taxonomy import Taxonomy

FORMAT = "ticketsearch.spec"
SPEC_FILE = "spec.json"  # a spec on disk
TENSORS_FILE = "tensors.safetensors"  # trained tensors beside it (and in every trial checkpoint)
VERSION = 1


@dataclass
class Spec:
    model: dict
    units: list[str]
    parameters: list[str]
    trainable_params: int
    total_params: int
    metrics: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    tensors: str | None = None
    format: str = FORMAT
    version: int = VERSION

    @classmethod
    def from_units(cls, taxonomy: Taxonomy, units, **extra) -> Spec:
        units = list(units)
        if taxonomy.lora_targets(units):  # how the adapters scale their update is part of what they compute
            extra["hyperparameters"] = {"lora_alpha_ratio": LORA_ALPHA_RATIO, **extra.get("hyperparameters", {})}
        return cls(
            model={
                "name": taxonomy.name,
                "model_type": taxonomy.model_type,
                "architecture": taxonomy.architecture,
                "num_labels": taxonomy.num_labels,
                "fingerprint": taxonomy.fingerprint,
                "pooling": taxonomy.pooling,
            },
            units=units,
            parameters=taxonomy.resolve(units),
            trainable_params=taxonomy.count(units),
            total_params=taxonomy.total_params,
            **extra,
        )

    @property
    def lora_alpha_ratio(self) -> int:
        """Each LoRA adapter's alpha over its rank (spaces._lora)."""
        return int(self.hyperparameters.get("lora_alpha_ratio", LORA_ALPHA_RATIO))

    @property
    def pooling(self) -> str:
        """How the ticket's head is fed: `cls` or `mean` (spaces._pooling)."""
        return self.model.get("pooling", LEGACY_POOLING)

    def taxonomy(self) -> Taxonomy:
        """The taxonomy of the model this spec was cut from (its name, head size and pooling)."""
        from spaces._taxonomy import load_taxonomy

        return load_taxonomy(self.model["name"], self.model["num_labels"], self.pooling)

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Spec:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"spec not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"spec {path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f"{path} is not a ticketsearch spec (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise UsageError(f"spec {path} has version {data.get('version')!r}; this ticketsearch reads {VERSION}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise UsageError(f"spec {path} is malformed: {exc}") from None

    # -- checks ----------------------------------------------------------------------------
    def validate(self, taxonomy: Taxonomy) -> None:
        """Raise UsageError unless this spec fits `taxonomy`'s model exactly."""
        if self.model.get("fingerprint") != taxonomy.fingerprint:
            raise UsageError(
                f"spec is for model '{self.model.get('name')}' ({self.model.get('architecture')}), "
                f"not {taxonomy.name} ({taxonomy.architecture}): parameter fingerprints differ"
            )
        if self.model.get("num_labels") != taxonomy.num_labels:
            raise UsageError(
                f"spec has a {self.model.get('num_labels')}-label head, the model {taxonomy.num_labels}"
            )
        resolved = taxonomy.resolve(self.units)  # raises on unknown units
        if resolved != self.parameters:
            raise UsageError("spec's parameter list does not match its units on this model")
        if taxonomy.count(self.units) != self.trainable_params:
            raise UsageError("spec's trainable_params does not match its units on this model")

    def apply(self, model: nn.Module, taxonomy: Taxonomy) -> list[str]:
        """Validate, then make exactly this spec's parameters trainable on `model` (adding its LoRA adapters)."""
        self.validate(taxonomy)
        return taxonomy.apply(model, self.units, self.lora_alpha_ratio)
