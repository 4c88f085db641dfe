"""``import aiosls`` is cheap: public names load on first use, so ``aiosls --help`` stays fast."""

from __future__ import annotations

import subprocess
import sys

import aiosls


def test_every_public_name_resolves_to_its_module() -> None:
    for name in aiosls.__all__:
        if name == "__version__":
            continue
        value = getattr(aiosls, name)
        module = aiosls._LAZY[name]
        assert value is getattr(sys.modules[module], name), name
    assert set(aiosls._LAZY) | {"__version__"} == set(aiosls.__all__)


def test_unknown_names_are_attribute_errors() -> None:
    assert not hasattr(aiosls, "NoSuchThing")
    from aiosls import errors  # a submodule still imports through the package

    assert errors.SlsError is aiosls.SlsError


def test_importing_the_package_imports_no_network_stack() -> None:
    code = "import sys, aiosls; print(sorted(m for m in ('aiohttp', 'asyncio', 'rich') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
