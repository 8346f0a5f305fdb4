"""Order change nodes topologically: drops first where possible, then creates in kind order."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from schema_pipeline.catalog.model import KINDS
from schema_pipeline.plan.model import Step

_RANK = {k: i for i, k in enumerate(KINDS)}


@dataclass
class Node:
    """A unit of change: all steps that drop, or create/alter, one object."""

    kind: str
    key: str
    phase: str  # "drop" | "create" | "alter"
    steps: list[Step] = field(default_factory=list)

    @property
    def nid(self) -> tuple[str, str, str]:
        return (self.phase if self.phase == "drop" else "create", self.kind, self.key)

    def priority(self) -> tuple:
        if self.phase == "drop":
            return (0, -_RANK.get(self.kind, 99), self.key)
        return (1, _RANK.get(self.kind, 99), self.key)


def order(nodes: list[Node], edges: set[tuple[int, int]]) -> list[Node]:
    """Kahn's algorithm with priorities; on a cycle, release the lowest-priority blocked node."""
    n = len(nodes)
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        if a == b:
            continue
        succ[a].append(b)
        indeg[b] += 1
    heap = [(nodes[i].priority(), i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    done = [False] * n
    out: list[Node] = []
    while len(out) < n:
        if not heap:
            rest = min((nodes[i].priority(), i) for i in range(n) if not done[i])
            indeg[rest[1]] = 0
            heap.append(rest)
        _, i = heapq.heappop(heap)
        if done[i]:
            continue
        done[i] = True
        out.append(nodes[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0 and not done[j]:
                heapq.heappush(heap, (nodes[j].priority(), j))
    return out
