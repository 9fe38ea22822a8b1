"""Package names imported on first use (PEP 562 module `__getattr__`), so
that importing a package loads no TensorFlow until a name that needs it is
used: the binaries check their flags and print `--help` before that."""

import importlib
import sys


def attach(package, sources):
    """The `(__getattr__, __dir__)` pair for the package called `package`,
    whose public names are defined in its submodules.

    Args:
        package: the package's `__name__`.
        sources: public name -> name of the submodule that defines it.
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name):
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sources[name]}"), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *sources})

    return __getattr__, __dir__
