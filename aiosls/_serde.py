"""The one cattrs converter (camelCase wire names <-> snake_case fields) and JSON helpers.

Production converters tolerate unknown keys (SLS adds fields over time); tests build the same
converter with ``forbid_extra_keys=True`` so a renamed field fails loudly. Primitive types are
structured strictly: ``"5"`` is not an ``int`` and ``5`` is not a ``str`` here, because a
mistyped field means the response is not what we think it is.

Every response is structured by :data:`CONVERTER`, whose generated functions skip cattrs'
detailed validation: a well-formed GetCheckPoint entry then costs about what a hand-written
parser would. When it fails, the caller structures the same data again with
:data:`DETAILED_CONVERTER` (same hooks, detailed validation) to say exactly which entry and
field is wrong; that only happens on a malformed response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._text import safe_text

__all__ = ["CONVERTER", "DETAILED_CONVERTER", "dumps", "loads", "make_converter", "to_camel"]

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


def _mistyped(value: Any, name: str) -> TypeError:
    # Server data, escaped and capped; a container is named, never rendered (it may be huge or
    # nested deeper than repr() can recurse).
    kind = type(value).__name__
    if isinstance(value, str):
        return TypeError(f"expected {name}, got str {safe_text(value, 40)!r}")
    if value is None or isinstance(value, int | float):
        return TypeError(f"expected {name}, got {kind} {safe_text(value, 40)}")
    return TypeError(f"expected {name}, got {kind}")


def _strict(kind: type, name: str) -> Callable[[Any, type], Any]:
    # One exact type() test on the success path: these run for every field of every entry.
    # type() is not isinstance(): bool is an int subclass, and a JSON true is never a shard.
    if kind is float:

        def structure_number(value: Any, _: type) -> Any:
            if type(value) is float or type(value) is int:
                return value
            raise _mistyped(value, name)

        return structure_number

    def structure(value: Any, _: type) -> Any:
        if type(value) is kind:
            return value
        raise _mistyped(value, name)

    return structure


def make_converter(*, forbid_extra_keys: bool = False, detailed_validation: bool = False) -> cattrs.Converter:
    """Build a converter: wire-name renames for every attrs class, strict primitives.

    ``detailed_validation`` makes cattrs collect every error with its path (``$[1].shard``);
    it costs ~0.3 us per object, so the production converter leaves it off and only the error
    path pays for it (see the module docstring).
    """
    conv = cattrs.Converter(forbid_extra_keys=forbid_extra_keys, detailed_validation=detailed_validation)
    for kind, name in ((int, "an integer"), (str, "a string"), (bool, "a boolean"), (float, "a number")):
        conv.register_structure_hook(kind, _strict(kind, name))

    def structure_factory(cls: type) -> Callable[[Any, type], Any]:
        overrides = {a.name: override(rename=_wire_name(a)) for a in attrs.fields(cls) if a.init}
        return make_dict_structure_fn(
            cls,
            conv,
            _cattrs_forbid_extra_keys=forbid_extra_keys,
            _cattrs_detailed_validation=detailed_validation,
            **cast(dict[str, Any], overrides),
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


#: The production converter: tolerant of extra keys, no detailed validation (fast).
CONVERTER: Final = make_converter()
#: The same converter with detailed validation: re-run on failed data, for the exact message.
DETAILED_CONVERTER: Final = make_converter(detailed_validation=True)
