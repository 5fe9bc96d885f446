"""Makes KerasHub find the RegNet classes after `import regnet_keras`, which loads no Keras.

KerasHub's `from_preset` looks a preset's classes up in Keras' registry of serialisable
classes, so they must be defined before it runs. Defining them needs keras_hub (and so Keras),
which `import regnet_keras` must not load: `install()` defines them right away when keras_hub is
already imported, and otherwise the moment it is.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings

HUB_MODULE = "keras_hub"


def register_classes() -> None:
    import regnet_keras.hub.image_classifier  # noqa: F401  (registration happens at import)


class _RegisterAfterImport(importlib.abc.Loader):
    """Runs keras_hub's own loader, then registers the RegNet classes."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            register_classes()
        except Exception as error:  # never break the user's import of keras_hub
            warnings.warn(f"regnet_keras could not register its KerasHub classes ({error}); "
                          "import regnet_keras.hub.image_classifier to see why.")


class _KerasHubFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != HUB_MODULE:
            return None
        sys.meta_path.remove(self)  # one import to watch, and no recursion below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterImport(spec.loader)
        return spec


def install() -> None:
    if sys.modules.get(HUB_MODULE) is not None:
        try:
            register_classes()
        except ImportError:
            pass  # keras_hub half-imported or broken: from_preset will say what is missing
    elif not any(isinstance(finder, _KerasHubFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasHubFinder())
