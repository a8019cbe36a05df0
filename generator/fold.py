"""Folding: choose PE and SIMD per node and predict cycles per frame.

The analytic cycle model is the one docs/CONTRACT.md states for the hardware units.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import BuildError
from .ir import ConvNode, Graph, ScaleMacNode


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def node_cycles(node) -> int:
    """Ideal cycles per frame of one node at its folding."""
    o = node.out
    if isinstance(node, ConvNode):
        return o.h * o.w * (node.k * node.k * node.inp.c // node.simd) * (o.c // node.pe)
    if isinstance(node, ScaleMacNode):
        return o.h * o.w * (node.inp.c // node.simd) * (o.c // node.pe)
    return node.inp.h * node.inp.w  # one input pixel per cycle


def legal_simd(node) -> list[int]:
    if isinstance(node, ConvNode):
        return divisors(node.inp.c)
    if isinstance(node, ScaleMacNode):
        return [s for s in divisors(node.inp.c) if node.n % s == 0 or s % node.n == 0]
    return [1]


def legal_pe(node) -> list[int]:
    if isinstance(node, (ConvNode, ScaleMacNode)):
        return divisors(node.out.c)
    return [1]


def check_folding(node) -> None:
    if node.pe not in legal_pe(node):
        raise BuildError(f"node {node.name}: PE={node.pe} must divide {node.out.c} output channels")
    if node.simd not in legal_simd(node):
        raise BuildError(f"node {node.name}: SIMD={node.simd} is not legal "
                         f"(choose from {legal_simd(node)})")


def cheapest(node, target_cycles: int) -> tuple[int, int]:
    """Least PE*SIMD meeting the target (prefer wide SIMD: bits are cheap); else the fastest."""
    options = [(pe * simd, -simd, pe, simd) for pe in legal_pe(node) for simd in legal_simd(node)]
    options.sort()
    for _, _, pe, simd in options:
        node.pe, node.simd = pe, simd
        if node_cycles(node) <= target_cycles:
            return pe, simd
    _, _, pe, simd = options[-1]
    return pe, simd


def fold(graph: Graph, board: dict, fps: float | None = None, folding: dict | None = None) -> dict:
    """Set node.pe / node.simd in place; returns a summary (cycles per node, interval)."""
    if folding is not None:
        unknown = set(folding) - {n.name for n in graph.nodes}
        if unknown:
            raise BuildError(f"folding names unknown node(s): {', '.join(sorted(unknown))}")
        for node in graph.nodes:
            f = folding.get(node.name, {})
            node.pe, node.simd = int(f.get("pe", 1)), int(f.get("simd", 1))
            check_folding(node)
    else:
        clock = board.get("clock_mhz", 100) * 1e6
        target = int(clock / (fps or board.get("target_fps", 2000)))
        for node in graph.nodes:
            node.pe, node.simd = cheapest(node, target)
    return summary(graph, board)


def summary(graph: Graph, board: dict) -> dict:
    cycles = {n.name: node_cycles(n) for n in graph.nodes}
    interval = max(cycles.values())
    clock = board.get("clock_mhz", 100) * 1e6
    return {"cycles": cycles, "interval_cycles": interval,
            "fps_at_clock": clock / interval, "clock_mhz": board.get("clock_mhz", 100),
            "folding": {n.name: {"pe": n.pe, "simd": n.simd} for n in graph.nodes}}


def load_folding(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"{path}: not a readable folding JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BuildError(f"{path}: folding must map node names to {{\"pe\": P, \"simd\": S}}")
    return data
