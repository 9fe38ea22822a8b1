"""Package names imported on first use (PEP 562 module `__getattr__`), so
that importing a package loads no TensorFlow until a name that needs it is
used: the binaries check their flags and print `--help` before that."""

import importlib
import sys


def attach(package, sources, submodules=()):
    """The `(__getattr__, __dir__)` pair for the package called `package`,
    whose public names are defined in its submodules.

    Args:
        package: the package's `__name__`.
        sources: public name -> name of the submodule that defines it.
        submodules: names of submodules exported as themselves
            (`package.<name>` is the submodule `<name>`).
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in sources:
            value = getattr(importlib.import_module(f"{package}.{sources[name]}"), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *sources, *submodules})

    return __getattr__, __dir__
