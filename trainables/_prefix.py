"""Frozen-prefix caching: a trial pays for the layers it trains, not for the frozen ones below them.

When nothing below layer L is trained (no embedding, no layer 0..L-1 unit), the embeddings and
layers 0..L-1 compute the same function in every step of every epoch of every trial with that
L. `FrozenPrefix` computes their output (the hidden states entering layer L) once per split, in
eval mode, and trains and evaluates only layers L.. and the head on top of it: no forward and no
backward pass below layer L. A trial training only the head (L = the number of layers) runs just
the pooler and the classifier per step.

The one difference from plain fine-tuning: the frozen prefix runs without dropout (eval mode)
during training too. The layers that train keep their dropout. Gradients of the trainable
parameters equal those of a plain forward whose prefix runs in eval mode (tested).

The cached states are kept on disk (`cache_dir`, one file per split and L, keyed by the model's
weights and the split's tokens), so trials of a run that share a frozen prefix compute it once:
the first writes the file atomically, the others read it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from spaces import Taxonomy, ticket_parameters
from trainables._batches import eval_batches
from trainables._data import Split

# Architectures whose base model feeds the embeddings' output straight into its layer list and
# calls each layer on the hidden states alone (checked by the gradient-equivalence tests).
SUPPORTED = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert", "mpnet"})


def frozen_prefix_layers(model: PreTrainedModel, taxonomy: Taxonomy) -> int:
    """Leading layers below every trainable parameter: 0 when an embedding trains or the model is unsupported."""
    layers_path = _layers_path(model, taxonomy)
    if layers_path is None:
        return 0
    trainable = {n for n, p in ticket_parameters(model).items() if p.requires_grad}
    lowest = taxonomy.num_layers
    prefix = model.base_model_prefix + "."
    in_units: set[str] = set()
    for unit in taxonomy.units:
        owned = (*unit.params, *unit.lora_params)  # a LoRA adapter belongs to the unit it adapts
        in_units.update(owned)
        if trainable.intersection(owned):
            if unit.layer is not None:
                lowest = min(lowest, unit.layer)
            elif unit.id != "pooler":
                return 0
    if any(n.startswith(prefix) and n not in in_units for n in trainable):
        return 0
    return lowest


def _layers_path(model: PreTrainedModel, taxonomy: Taxonomy) -> str | None:
    if taxonomy.model_type not in SUPPORTED:
        return None
    base = getattr(model, model.base_model_prefix)
    if hasattr(base, "embeddings_project"):  # ELECTRA with a projection after the embeddings
        return None
    return taxonomy.layers_path


class _Injector(nn.Module):
    """Stands in for the embeddings: returns the cached hidden states of the current batch."""

    def __init__(self):
        super().__init__()
        self.states: torch.Tensor | None = None

    def forward(self, *args, **kwargs) -> torch.Tensor:
        if self.states is None:
            raise RuntimeError("the frozen prefix was not fed the batch's states")
        return self.states


class _CachedSplit:
    """Hidden states of every row of a split, unpadded and concatenated: [sum of lengths, hidden]."""

    def __init__(self, flat: torch.Tensor, lengths: np.ndarray):
        self.flat = flat
        self.lengths = lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])

    def batch(self, rows: np.ndarray, longest: int) -> torch.Tensor:
        """[len(rows), longest, hidden], zeros past each row's length (masked out in attention)."""
        positions = np.arange(longest)
        valid = positions[None, :] < self.lengths[rows][:, None]
        index = np.where(valid, self.offsets[rows][:, None] + positions[None, :], 0)
        gathered = self.flat[torch.from_numpy(index.reshape(-1)).to(self.flat.device)]
        gathered = gathered.view(len(rows), longest, -1)
        return gathered * torch.from_numpy(valid).to(gathered.device, gathered.dtype)[..., None]


class FrozenPrefix:
    """Runs a model from cached hidden states at the input of layer `layers` (see module docstring).

    `install()` swaps the base model's embeddings for an injector and its layer list for layers
    `layers`.. (the parameters stay the same objects, so an optimizer built before still holds
    them); `feed(split, rows, longest)` sets the states of the next batch.
    """

    def __init__(self, model: PreTrainedModel, taxonomy: Taxonomy, layers: int, cache_dir: str | Path | None = None,
                 model_key: str = "", autocast=None):
        self.model = model
        self.layers = layers
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.autocast = autocast
        base = getattr(model, model.base_model_prefix)
        layers_path = _layers_path(model, taxonomy)
        if layers_path is None:
            raise ValueError(f"no frozen-prefix cache for {type(model).__name__}")
        parent_path, _, self._attr = layers_path.rpartition(".")
        self._base = base
        self._parent = base.get_submodule(parent_path) if parent_path else base
        self._all_layers = getattr(self._parent, self._attr)
        self._embeddings = base.embeddings
        self._injector = _Injector()
        self._caches: dict[int, _CachedSplit] = {}
        weights = hashlib.sha1(model_key.encode())
        for name, param in model.named_parameters():  # the prefix's weights: embeddings and layers below
            if name.startswith(f"{model.base_model_prefix}.embeddings") or self._in_prefix(name):
                weights.update(name.encode())
                weights.update(param.detach().flatten()[:1024].float().cpu().numpy().tobytes())
        self._key = weights.hexdigest()[:16]

    def _in_prefix(self, name: str) -> bool:
        marker = f".{self._attr}."
        if marker not in name:
            return False
        index = name.split(marker, 1)[1].split(".", 1)[0]
        return index.isdigit() and int(index) < self.layers

    def install(self) -> None:
        self._base.embeddings = self._injector
        setattr(self._parent, self._attr, nn.ModuleList(list(self._all_layers)[self.layers:]))

    def _restore(self) -> None:
        self._base.embeddings = self._embeddings
        setattr(self._parent, self._attr, self._all_layers)

    def feed(self, split: Split, rows: np.ndarray, longest: int) -> None:
        cache = self._caches.get(id(split))
        if cache is None:
            cache = self._caches[id(split)] = self._load_or_compute(split)
        self._injector.states = cache.batch(rows, longest)

    def _load_or_compute(self, split: Split) -> _CachedSplit:
        device = next(self.model.parameters()).device
        tokens = hashlib.sha1(split.input_ids.tobytes() + split.lengths.tobytes()).hexdigest()[:16]
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"prefix-{self._key}-L{self.layers}-{device.type}-{tokens}.npy"
            if path.exists():
                return _CachedSplit(torch.from_numpy(np.load(path)).to(device), split.lengths)
        flat = self._compute(split, device)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            with open(temporary, "wb") as handle:
                np.save(handle, flat.cpu().numpy())
            temporary.replace(path)  # atomic: a concurrent trial reads a whole file or none
        return _CachedSplit(flat, split.lengths)

    @torch.no_grad()
    def _compute(self, split: Split, device: torch.device) -> torch.Tensor:
        """Embeddings and layers below `layers`, in eval mode, for every row; unpadded, in row order."""
        from trainables._model import forward_inputs

        installed = self._base.embeddings is self._injector
        self._restore()
        setattr(self._parent, self._attr, nn.ModuleList(list(self._all_layers)[: self.layers]))
        was_training = self._base.training
        self._base.eval()
        pieces: dict[int, torch.Tensor] = {}
        inputs = forward_inputs(self._base) - {"labels"}
        try:
            for rows, batch in eval_batches(split, 128, inputs):
                batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
                with self.autocast() if self.autocast else torch.autocast("cpu", enabled=False):
                    states = self._base(**batch).last_hidden_state.float()
                for i, row in enumerate(rows):
                    pieces[int(row)] = states[i, : split.lengths[row]]
        finally:
            self._restore()
            self._base.train(was_training)
            if installed:
                self.install()
        return torch.cat([pieces[i] for i in range(len(split))])
