"""A package's public names, loaded on first use (PEP 562): importing the package loads none of its modules, so a
command line reads its options before torch or transformers load. Shared by spaces, trainables and search."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, exports: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any],
                                                                              Callable[[], list[str]]]:
    """(`__all__`, `__getattr__`, `__dir__`) of `package`, whose public names are `exports`: each module and the
    names it defines (`"PUBLIC=name"` where the module calls the name otherwise). A name, once loaded, becomes a
    plain attribute of the package."""
    where: dict[str, tuple[str, str]] = {}
    for module, names in exports.items():
        for entry in names:
            public, _, private = entry.partition("=")
            where[public] = (module, private or public)
    public_names = sorted(where)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, private = where[name]
        value = getattr(importlib.import_module(module), private)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public_names})

    return public_names, __getattr__, __dir__
