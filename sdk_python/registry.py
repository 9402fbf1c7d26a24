"""A name -> entry table with a did-you-mean hint: the one registry behind every plug-in point.

Losses, backbones, model architectures and export formats are all "a name in a config or on the
command line selects one of several implementations". One small class serves them all, in the
manner of timm's ``register_model`` and pytorch-metric-learning's loss factories, so that every
such name behaves alike: registering a name twice is an error, and an unknown name is one line
that names the nearest registered one and lists them all.

It lives in the SDK because the SDK is the bottom layer (training and export import it, never
the reverse) and it needs nothing but the standard library.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, kept in registration order.

    ``kind`` is the noun in error messages ("loss", "backbone"...); ``error`` is the exception an
    unknown name raises (``KeyError`` by default; a config layer may pass its ``ConfigError``).
    """

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None) -> T | Callable[[T], T]:
        """``reg.register(name, entry)``, or ``@reg.register(name)`` as a decorator."""
        if entry is not None:
            self._add(name, entry)
            return entry

        def wrap(fn: T) -> T:
            self._add(name, fn)
            return fn

        return wrap

    def _add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry (for tests that register a throw-away entry)."""
        self.check(name)
        return self._entries.pop(name)

    def names(self, *, sort: bool = False) -> list[str]:
        return sorted(self._entries) if sort else list(self._entries)

    def unknown(self, name: str, what: str | None = None, listed: str = "registered",
                error: type[Exception] | None = None) -> Exception:
        """The error for an unknown ``name``: ``unknown <what> 'x' (did you mean 'y'?); <listed>: a, b``."""
        return (error or self.error)(f"unknown {what or self.kind} {name!r}{did_you_mean(name, self.names())}; "
                                     f"{listed}: {', '.join(self.names(sort=True))}")

    def check(self, name: str, error: type[Exception] | None = None) -> None:
        if name not in self._entries:
            raise self.unknown(name, error=error)

    def get(self, name: str, error: type[Exception] | None = None) -> T:
        """The entry for ``name``; an unknown name raises ``error`` (default: the registry's)."""
        self.check(name, error)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())


def did_you_mean(name: object, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or ``""``: the hint every
    unknown-name error carries (registry names, config keys, architecture options)."""
    near = difflib.get_close_matches(str(name), choices, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""
