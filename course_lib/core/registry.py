"""Name -> class registries: one kind of object each (loss terms, callbacks, feature extractors, metrics).

    TERMS = Registry("loss term", base=LossTerm)

    @TERMS.register("r1")
    class R1Penalty(LossTerm): ...

    TERMS.get("r1")                        # the class (hyphens and underscores are interchangeable)
    TERMS.build({"name": "r1", "gamma": 10})  # an instance; bad settings are a one-line ConfigError
    TERMS.get("mypkg.penalties:Orthogonality")  # a class from the user's own module, imported by path

A name with a colon, `module.path:ClassName`, imports that module and takes that class, which must be a
subclass of the registry's `base` (so a config cannot name an arbitrary callable). This is how a student or a
researcher uses their own term, callback or metric without editing course_lib (docs/architecture.md, "Add one
in one file"); a registration call (`@TERMS.register("mine")` in their module, imported before the config is
read) works too. A registry is a read-only mapping of the registered names (`sorted(TERMS)`, `"r1" in TERMS`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from course_lib.core.errors import ConfigError

T = TypeVar("T", bound=type)


def canonical(name: str) -> str:
    """The spelling names are compared in: lower case, '_' read as '-' ('gradient_penalty' is 'gradient-penalty')."""
    return name.strip().lower().replace("_", "-")


class Registry(Mapping):
    """The classes of one kind of object, by name. See the module docstring."""

    def __init__(self, kind: str, base: type | None = None):
        self.kind, self.base = kind, base
        self._classes: dict[str, type] = {}  # registered spelling -> class, in registration order
        self._by_canonical: dict[str, str] = {}

    # ---------------------------------------------------------------- registering
    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: store the class under `name` and set `cls.name`; a second, different class under a
        taken name is an error."""

        def decorate(cls: T) -> T:
            self.add(name, cls)
            return cls

        return decorate

    def add(self, name: str, cls: type) -> None:
        key = canonical(name)
        taken = self._classes.get(self._by_canonical.get(key, ""))
        if taken is not None and taken is not cls:
            raise ValueError(f"{self.kind} {name!r} is already registered by {taken.__qualname__}")
        if self.base is not None and not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"a {self.kind} must be a subclass of {self.base.__qualname__}, got {cls!r}")
        cls.name = name
        self._classes[name] = cls
        self._by_canonical[key] = name

    # ---------------------------------------------------------------- looking up
    def get(self, name: str, default: Any = None) -> type:  # type: ignore[override]
        """The class registered as `name`, or the class `module.path:ClassName` names (imported now)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if ":" in name:
            return self._import(name)
        registered = self._by_canonical.get(canonical(name))
        if registered is None:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())} "
                "(or give your own class as 'module.path:ClassName')"
            )
        return self._classes[registered]

    def spelling(self, name: str) -> str:
        """The name as registered (or as given, for an imported class)."""
        if ":" in name:
            return name
        return self._by_canonical.get(canonical(name), name)

    def _import(self, path: str) -> type:
        if _PATH_IMPORTS_FORBIDDEN:
            raise ConfigError(f"{self.kind} {path!r}: {_PATH_IMPORTS_FORBIDDEN[-1]}")
        module_name, _, attribute = path.partition(":")
        try:
            module = _import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{self.kind} {path!r}: cannot import {module_name!r} ({exc})") from exc
        cls = getattr(module, attribute, None)
        if cls is None:
            raise ConfigError(f"{self.kind} {path!r}: module {module_name!r} has no {attribute!r}")
        if self.base is not None and not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise ConfigError(f"{self.kind} {path!r} is not a subclass of {self.base.__qualname__}")
        if getattr(cls, "name", None) in (None, "", getattr(self.base, "name", None)):
            cls.name = path  # checkpoints key an unregistered class's state by its path
        return cls

    def build(self, spec: Mapping | str, **extra: Any):
        """An instance from a config entry {name: ..., **settings} (or a bare name), plus `extra` keywords."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ConfigError(f"a {self.kind} entry must be a mapping with a 'name', got {spec!r}")
        cls = self.get(spec["name"])
        settings = {k: v for k, v in spec.items() if k != "name"}
        try:
            return cls(**settings, **extra)
        except TypeError as exc:
            raise ConfigError(f"bad settings for {self.kind} {spec['name']!r}: {exc}") from exc

    def names(self) -> list[str]:
        return list(self._classes)

    # ---------------------------------------------------------------- the mapping
    def __getitem__(self, name: str) -> type:
        registered = self._by_canonical.get(canonical(name)) if isinstance(name, str) else None
        if registered is None:
            raise KeyError(name)
        return self._classes[registered]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical(name) in self._by_canonical

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._classes)})"


# Why naming a class by module path is refused right now (innermost last); empty: allowed.
_PATH_IMPORTS_FORBIDDEN: list[str] = []


@contextlib.contextmanager
def no_path_imports(reason: str):
    """Within this block, `module.path:Class` names are refused with `reason` (registered names still work):
    for a process that reads settings from someone it does not trust (the grader's checker reads a student's
    records), importing the module they name would run code of their choosing."""
    _PATH_IMPORTS_FORBIDDEN.append(reason)
    try:
        yield
    finally:
        _PATH_IMPORTS_FORBIDDEN.pop()


def _import_module(name: str):
    """Import `name`; a module in the folder the command runs from counts too (the `course-lib` script, unlike
    `python -m`, does not put that folder on sys.path, and that is where a student's own file lives)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != name.split(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)  # appended: never shadows an installed module
        return importlib.import_module(name)


def registering_decorator(registry: Registry, kind: str | None = None) -> Callable[[str], Callable[[T], T]]:
    """`registry.register` (kept for modules written before `Registry` existed)."""
    return registry.register
