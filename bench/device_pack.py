"""Carry a model and a tokenised task to a machine with no network and a small upload limit.

    .venv/bin/python bench/device_pack.py pack --model minilm --data DATA.npz --out PACK.npz
    python3 bench/device_pack.py unpack PACK.npz MODEL_DIR      # there: writes config + weights

Only the word-embedding rows of tokens that occur in the tokenised data travel (the rest are
zeros after unpacking); for that data the unpacked model computes exactly what the original
does, and every tensor keeps its shape, so parameter counts and unit ids are unchanged. The
folder's small JSON files travel too (config.json, and a sentence-transformers checkpoint's
modules.json and pooling config, which decide the head's pooling; the tokenizer's files do not),
so a table recorded from the unpacked folder trains what a search of the original does.
Float tensors are stored as byte planes, which compress better than interleaved float bytes.
Used to record benchmark tables on a GPU machine that has PyTorch but no hub and no packages
of this project's data; needs only numpy, torch and safetensors there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EMBEDDING = "embeddings.word_embeddings.weight"


def _planes(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.astype(np.float32).reshape(-1).view(np.uint8).reshape(-1, 4).T)


def _unplanes(planes: np.ndarray, shape) -> np.ndarray:
    return np.ascontiguousarray(planes.T).view(np.float32).reshape(shape)


def pack(model: str, data: str, out: str) -> None:
    from safetensors.numpy import load_file

    from spaces import resolve_model

    folder = Path(resolve_model(model))
    tensors = load_file(str(folder / "model.safetensors"))
    with np.load(data) as arrays:
        used = np.unique(np.concatenate([arrays[k].reshape(-1) for k in arrays if k.endswith(".input_ids")]))
    arrays = {"file:" + str(path.relative_to(folder)): np.frombuffer(path.read_bytes(), dtype=np.uint8)
              for path in sorted(folder.rglob("*.json")) if _travels(path)}
    for name, value in tensors.items():
        arrays["shape:" + name] = np.asarray(value.shape)  # the full shape, restored on unpacking
        if name.endswith(EMBEDDING):
            arrays["rows:" + name] = used.astype(np.int64)
            value = value[used]
        arrays["planes:" + name] = _planes(value)
    np.savez_compressed(out, **arrays)
    vocabulary = next(v.shape[0] for n, v in tensors.items() if n.endswith(EMBEDDING))
    print(f"{out}: {len(tensors)} tensors, {len(used)} of {vocabulary} embedding rows, "
          f"{Path(out).stat().st_size / 1e6:.1f} MB")


SIDE_FILE_LIMIT = 64_000


def _travels(path: Path) -> bool:
    """A JSON file beside the weights that says how the model is built or pooled (not the tokenizer's)."""
    return not path.name.startswith(("tokenizer", "special_tokens", "vocab")) and path.stat().st_size < SIDE_FILE_LIMIT


def unpack(path: str, folder: str) -> None:
    import torch
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    with np.load(path) as arrays:
        for key in arrays:
            if key.startswith("file:"):
                side = out / key.removeprefix("file:")
                side.parent.mkdir(parents=True, exist_ok=True)
                side.write_bytes(arrays[key].tobytes())
            if not key.startswith("planes:"):
                continue
            name = key.removeprefix("planes:")
            shape = tuple(arrays["shape:" + name])
            if "rows:" + name in arrays:
                full = np.zeros(shape, dtype=np.float32)
                rows = arrays["rows:" + name]
                full[rows] = _unplanes(arrays[key], (len(rows), *shape[1:]))
                tensors[name] = torch.from_numpy(full)
            else:
                tensors[name] = torch.from_numpy(_unplanes(arrays[key], shape))
    save_file(tensors, str(out / "model.safetensors"))
    print(f"unpacked {len(tensors)} tensors into {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack")
    packing.add_argument("--model", default="minilm")
    packing.add_argument("--data", required=True, help="tokenised data (.npz from bench/record_table.py --save-data)")
    packing.add_argument("--out", required=True)
    unpacking = commands.add_parser("unpack")
    unpacking.add_argument("pack")
    unpacking.add_argument("folder")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.model, args.data, args.out)
    else:
        unpack(args.pack, args.folder)


if __name__ == "__main__":
    main()
