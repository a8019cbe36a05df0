"""The units layer: every folded IR node as one frozen hardware `Plan` (cycles, pipeline
depth, window generator, widener, core parameters, memories, FIFO depths, lanes).

One module per node kind, named like its HLS header, Verilog module and golden function
(docs/ARCHITECTURE.md, "Adding a node kind"). The folding enumerates plans, the cost model
(generator/hw/perf.py) prices them, both backends and the report print them; nothing here
imports a backend.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import BuildError
from . import avgpool, conv, globalsum, maxpool, resadd, scalemac
from .common import PIPE, Memory, Plan, Widen, Window  # noqa: F401  (the layer's types)

UNITS = {m.KIND: m for m in (conv, maxpool, avgpool, scalemac, globalsum, resadd)}


def unit(node):
    """The unit module of a node's kind."""
    try:
        return UNITS[node.kind]
    except (KeyError, AttributeError):
        raise BuildError(f"{getattr(node, 'name', node)!s:.60}: no hardware unit for node kind "
                         f"{getattr(node, 'kind', type(node).__name__)!r:.40}") from None


def plan(node) -> Plan:
    """The node at its folding (node.pe, node.simd, node.mult) as hardware. Its IR fields are
    assumed checked (ir.check_node, run by Graph.validate before folding and rendering);
    the plan checks the folding."""
    return unit(node).plan(node)


def contents(node, p: Plan | None = None) -> list:
    """[(Memory, fields [depth, n] ints, field bits)] for every read-only memory of a node at
    its folding, in plan order: the one owner of what a memory holds (the RTL memory files,
    the HLS tables' checks and the run-time weight stream, docs/WEIGHTS.md, are written
    from it)."""
    p = p or plan(node)
    table = unit(node).contents(node, p.core)
    out = []
    for m in p.memories:
        if not m.rom:
            continue
        if m.role not in table:
            raise BuildError(f"{node.name}: no contents for its {m.role} memory")
        fields, bits = table[m.role]
        fields = np.asarray(fields, dtype=np.int64)
        if fields.ndim == 1:
            fields = fields[:, None]
        if fields.shape[0] != m.depth or fields.shape[1] * bits != m.width:
            raise BuildError(f"{node.name}: its {m.role} memory is {m.depth} x {m.width} bits, "
                             f"the packing {fields.shape[0]} x {fields.shape[1] * bits}")
        out.append((m, fields, bits))
    return out


def legal_pe(node) -> list[int]:
    return unit(node).legal_pe(node)


def legal_simd(node) -> list[int]:
    return unit(node).legal_simd(node)


def check_folding(node) -> None:
    """One-line BuildError naming the node and what is legal."""
    err = unit(node).folding_error(node)
    if err:
        raise BuildError(f"node {node.name}: {err}")


def cycles(node) -> int:
    """Cycles per frame of a node at its folding (steady state, no stalls)."""
    return plan(node).cycles


def pipeline_depth(node) -> int:
    """Cycles from the last input beat an output pixel needs to that pixel's output beat."""
    return plan(node).pipe


def plan_graph(graph) -> list[Plan]:
    return [plan(n) for n in graph.nodes]
