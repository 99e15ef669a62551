"""Name -> class registries: the one decorator behind `@register_extractor`, `@register_callback`, ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=type)


def registering_decorator(registry: dict[str, type], kind: str) -> Callable[[str], Callable[[T], T]]:
    """A class decorator factory `register(name)` that stores the class in `registry` under `name` and sets
    `cls.name`; registering a second, different class under a taken name is an error."""

    def register(name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            taken = registry.get(name)
            if taken is not None and taken is not cls:
                raise ValueError(f"{kind} {name!r} is already registered by {taken.__qualname__}")
            cls.name = name
            registry[name] = cls
            return cls

        return decorate

    return register
