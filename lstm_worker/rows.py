"""Work done for many items at once where they share a key: how a stack's views, windows
and contexts are grouped into rows of one array, each group's results put back in the
items' order."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")


def grouped(
    items: Sequence[Item],
    key: Callable[[Item], Hashable],
    compute: Callable[[list[Item]], Sequence[Out]],
) -> list[Out]:
    """``compute`` applied to each group of ``items`` with the same ``key`` (one result
    per item of the group, in its order); the results in the order of ``items``."""
    groups: dict[Hashable, list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault(key(item), []).append(position)
    found: dict[int, Out] = {}
    for positions in groups.values():
        found.update(zip(positions, compute([items[p] for p in positions]), strict=True))
    return [found[p] for p in range(len(items))]
