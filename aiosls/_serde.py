"""The one cattrs converter (camelCase wire names <-> snake_case fields) and JSON helpers.

Production converters tolerate unknown keys (SLS adds fields over time); tests build the same
converter with ``forbid_extra_keys=True`` so a renamed field fails loudly. Primitive types are
structured strictly: ``"5"`` is not an ``int`` and ``5`` is not a ``str`` here, because a
mistyped field means the response is not what we think it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

__all__ = ["CONVERTER", "dumps", "loads", "make_converter", "to_camel"]

try:  # orjson is an optional extra: faster, and identical results for our payloads.
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - exercised only without the extra
    loads = json.loads

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def to_camel(name: str) -> str:
    """``update_time`` -> ``updateTime``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire_name(a: attrs.Attribute[Any]) -> str:
    return str(a.metadata.get("wire", to_camel(a.name)))


def _strict(kind: type, name: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        # bool is an int subclass; a JSON true is never a shard number.
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r:.40}")
        return value

    return structure


def make_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """Build the converter: wire-name renames for every attrs class, strict primitives."""
    conv = cattrs.Converter(forbid_extra_keys=forbid_extra_keys)
    for kind, name in ((int, "an integer"), (str, "a string"), (bool, "a boolean"), (float, "a number")):
        conv.register_structure_hook(kind, _strict(kind, name))

    def structure_factory(cls: type) -> Callable[[Any, type], Any]:
        overrides = {a.name: override(rename=_wire_name(a)) for a in attrs.fields(cls) if a.init}
        return make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=forbid_extra_keys, **cast(dict[str, Any], overrides)
        )

    def unstructure_factory(cls: type) -> Callable[[Any], Any]:
        overrides = {
            a.name: override(rename=_wire_name(a)) if a.init else override(omit=True)
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **cast(dict[str, Any], overrides))

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


#: The production converter: tolerant of extra keys.
CONVERTER: Final = make_converter()
