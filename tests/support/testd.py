"""ktrdrd with test-only extensions: ``python -m tests.support.testd [ktrdrd flags…]``.

The product's ``ktrdrd`` loads nothing from the environment. Tests and benchmarks start this
launcher instead; it runs the same :func:`ktrdrd.__main__.main` with the ``register(core,
ctl_methods)`` functions of the modules named in ``KTRDR_TEST_PLUGINS`` (comma-separated; default
``tests.support.kinds``, the test operation kinds) as :data:`ktrdrd.app.Extension` s.
"""

from __future__ import annotations

import importlib
import os
import sys

from ktrdrd.__main__ import main

PLUGINS_ENV = "KTRDR_TEST_PLUGINS"
DEFAULT_PLUGINS = "tests.support.kinds"


def extensions(spec: str) -> list:
    """The ``register`` function of each module named in ``spec``; exits 1 naming a bad module."""
    found = []
    for name in filter(None, (part.strip() for part in spec.split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            sys.exit(f"{PLUGINS_ENV}: cannot import {name!r}: {exc}")
        register = getattr(module, "register", None)
        if not callable(register):
            sys.exit(f"{PLUGINS_ENV}: {name!r} has no register(core, ctl_methods) function")
        found.append(register)
    return found


if __name__ == "__main__":
    sys.exit(main(extensions=extensions(os.environ.get(PLUGINS_ENV, DEFAULT_PLUGINS))))
