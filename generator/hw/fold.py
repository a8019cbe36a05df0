"""Folding: choose PE and SIMD (and the multiplier implementation of int8 layers) per node.

Three modes (docs/FOLDING.md):
- default: the fastest pipeline (smallest interval) whose predicted resources fit the
  board's budget (80 % of LUT and FF, 90 % of BRAM36 and DSP unless --util says otherwise);
- `fps`: the least resources meeting `clock / fps` cycles per frame;
- a folding file: validated (one-line error naming the node and what is legal); nodes it
  leaves out get the cheapest folding that does not slow the pipeline down.

For a target interval T every node takes its cheapest legal option with cycles <= T, where
"cheapest" is a weighted sum of its predicted resources (generator/hw/perf.py). The weights
start at 1 / board capacity and grow for any resource the total overflows (a Lagrangian
repair), so that a scarce resource (DSPs on a Zynq-7020) is spent where it saves most.
The smallest T that fits is found by bisection over the cycle counts the nodes can take.

Weight memories: block RAM, LUT RAM or logic as the synthesis tool maps them ('auto'), or
UltraRAM ('uram', ConvNode / ScaleMacNode `weight_mem`). UltraRAM is only tried when block
RAM alone does not fit (a folding that fits as before stays exactly as before) and the board
has some: the search then runs again with a URAM variant of every weight memory, priced like
the other resources, so the Lagrangian repair moves the memories that save the most block
RAM per URAM block (the largest, at foldings whose words fill URAM's 72 bits) there.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields

from . import dram, perf, pipeline, units
from .boards import as_board
from ..core.errors import BuildError
from .ir import ConvNode, Graph
from .units import avgpool, check_folding, legal_pe, legal_simd, scalemac

DEFAULT_UTIL = {"LUT": 0.80, "FF": 0.80, "BRAM36": 0.90, "DSP": 0.90, "URAM": 0.90}
# Starting price of each resource per unit of board capacity. DSPs start nearly free (they
# do nothing else in these designs), FFs are twice as plentiful as LUTs in a slice; a URAM
# block costs like a block RAM per unit of capacity (it holds 8 x the bits of a RAMB36).
START_PRICE = {"LUT": 1.0, "FF": 0.25, "BRAM36": 1.0, "DSP": 0.02, "URAM": 1.0}
MULT_CHOICES = ("auto", "any", "dsp", "dsp2", "lut")
#: node kinds with a weight memory the folding may put in UltraRAM
WEIGHT_KINDS = ("conv", "scalemac")


# ---------------------------------------------------------------------------------------

@dataclass
class Option:
    pe: int
    simd: int
    mult: str | None          # int8 layers: 'dsp' | 'dsp2' | 'lut'; None otherwise
    dsp_cap: int | None       # int8 layers: DSPs at most (the rest LUT multipliers)
    cycles: int
    res: dict                 # LUT, FF, BRAM36, DSP
    pipe: int = 0             # convolutions: cf_mvu PIPE for the target clock
    meets: bool = True        # its estimated worst path fits the clock period (pipeline.py)
    path_ns: float = 0.0      # the scale MAC's estimated path (0: not used by the search)
    weight_mem: str = "auto"  # conv / scale MAC: where the weights live (perf.WEIGHT_MEMS)
    batch: int = 1            # 'dram' (fully-connected layers): frames per weight pass


def mult_styles(mult: str) -> tuple[str, ...]:
    if mult not in MULT_CHOICES:
        raise BuildError(f"--mult {mult}: choose from {', '.join(MULT_CHOICES)}")
    if mult == "auto":          # what both backends implement
        return units.conv.MULT_STYLES
    return perf.MULT_STYLES if mult == "any" else (mult,)


def _pooled(node) -> bool:
    """An average pool: its lanes follow the other nodes (avgpool.choose_lanes). A residual
    add's lanes cost DSPs, so it is folded by price like the matrix units."""
    return node.kind == "avgpool"


def node_options(node, styles=("dsp",), dsp_caps=(None,), clock_mhz: float | None = None,
                 weight_mems=("auto",)) -> list[Option]:
    """Every legal folding of a node (its unit plan) with its cycles and priced resources;
    a convolution's pipelining follows the target clock (units.conv.choose_pipe); one option
    per weight memory kind in `weight_mems` (kinds without weights: 'auto' only)."""
    piped = node.kind in ("conv", "scalemac")
    mems = tuple(weight_mems) if node.kind in WEIGHT_KINDS else \
        tuple(m for m in weight_mems if m == "auto")
    if not mems:
        return []
    saved = node.pe, node.simd, getattr(node, "mult", None), getattr(node, "pipe", 0)
    out = []
    int8 = isinstance(node, ConvNode) and node.matrix == "int8"
    if int8:                    # the DSP chain length follows the clock, not the folding
        node.dsp_group = units.conv.choose_dsp_group(node, clock_mhz)
    try:
        for pe in legal_pe(node):
            for simd in legal_simd(node):
                node.pe, node.simd = pe, simd
                if piped:
                    node.pipe = units.unit(node).choose_pipe(node, clock_mhz)
                meets = units.unit(node).meets_clock(node, clock_mhz) if piped else True
                # the scale MAC's cascade path only: a shorter matrix-unit path than the
                # cheapest costs throughput the clock does not give back (the others stay
                # near FLOOR_NS; on kv260 it cost NIN 10,240 -> 12,800 cycles)
                path = scalemac.path_ns(node) if node.kind == "scalemac" else 0.0
                variants = [(s, c) for s in styles for c in dsp_caps] if int8 else [(None, None)]
                seen = set()
                for style, cap in variants:
                    if style is not None:
                        node.mult = style
                        # the int8 dot product's path depends on the multiplier style
                        meets = units.unit(node).meets_clock(node, clock_mhz)
                    p = units.plan(node)
                    for wm in mems:
                        res, _ = perf.price(p, cap, weight_mem=wm)
                        d = res.as_dict()
                        key = (d["LUT"], d["FF"], d["BRAM36"], d["DSP"], d["URAM"], wm)
                        if key in seen:
                            continue
                        seen.add(key)
                        out.append(Option(pe, simd, style, cap if (int8 and cap is not None
                                                                   and d["DSP"] >= cap) else None,
                                          p.cycles, {r: float(d[r]) for r in perf.ALL_RESOURCES},
                                          node.pipe if piped else 0, meets, path, wm))
    finally:
        node.pe, node.simd = saved[0], saved[1]
        if saved[2] is not None:
            node.mult = saved[2]
        if piped:
            node.pipe = saved[3]
    return out


def dram_options(graph: Graph, board, clock_mhz: float | None = None) -> dict:
    """{node name: options} of every binary fully-connected node with its weights streamed
    from DRAM (generator/hw/dram.py): per PE x SIMD the batches up to the first that makes
    it compute-bound (a larger one only costs buffers), cf_mvu_dram PIPE for the clock, the
    interval per frame at the board's DRAM bandwidth and the priced resources."""
    b = as_board(board)
    bpc = b.dram_bytes_per_cycle
    out = {}
    for node in graph.nodes:
        if dram.eligible(node) is not None:
            continue
        params = units.conv.parameters(node)
        opts = []
        for pe in dram.legal_pe(node):
            for simd in dram.legal_simd(node):
                sf = node.K // simd
                for B in dram.BATCHES:
                    pipe = dram.choose_pipe(simd, B, sf, clock_mhz)
                    dp = dram.plan(node, b, pe, simd, B, pipe, params)
                    res = perf.dram_res(dp).as_dict()
                    opts.append(Option(pe, simd, None, None, dp.cycles(bpc),
                                       {r: float(res[r]) for r in perf.ALL_RESOURCES}, pipe,
                                       dram.meets_clock(dp, clock_mhz), 0.0, "dram", B))
                    if dp.bound(bpc) == "compute":
                        break
        out[node.name] = opts
    return out


def _dram_attempt(pick: dict, graph: Graph, board) -> dict:
    """The DRAM-streamed layers of a folding the search found (not applied): batch, folding,
    interval and bandwidth per layer, the total at the folding's interval."""
    b = as_board(board)
    interval = max(o.cycles for o in pick.values())
    layers = {}
    for node in graph.nodes:
        o = pick.get(node.name)
        if o is not None and o.weight_mem == "dram":
            dp = dram.plan(node, b, o.pe, o.simd, o.batch, o.pipe)
            layers[node.name] = dram.summary(dp, b)
    used = sum(d["bytes_per_batch"] / d["batch"] for d in layers.values()) / interval \
        * b.clock_mhz
    return {"layers": layers, "bandwidth_mbps": round(used, 1),
            "bandwidth_available_mbps": round(b.dram_mbps, 1), "port_bits": b.dram_port_bits}


def _budget(board: dict, util: dict | None) -> dict:
    avail = as_board(board).resources
    u = dict(DEFAULT_UTIL)
    u.update(util or {})
    return {r: avail[r] * u[r] for r in perf.ALL_RESOURCES if r in avail}


def _choose(options: dict, T: int, prices: dict, pools: dict | None = None) -> dict | None:
    """Cheapest option per node with cycles <= T under the given resource prices; an average
    pool (`pools`: name -> node) then takes the fewest lanes within half the slowest other
    node (avgpool.choose_lanes, the one rule of search and result)."""
    pools = pools or {}
    pick = {}
    for name, opts in options.items():
        if name in pools:
            continue
        best, best_cost = None, math.inf
        # foldings estimated to meet the clock first (a wide popcount may not, even pipelined);
        # when none does, those within 10 % of the shortest path any folding at T achieves,
        # but no shorter than what the pipelined matrix units reach anyway (pipeline.FLOOR_NS)
        fits = [o for o in opts if o.cycles <= T]
        timed = [o for o in fits if o.meets]
        if not timed and fits:
            limit = max(1.1 * min(o.path_ns for o in fits), pipeline.FLOOR_NS)
            timed = [o for o in fits if o.path_ns <= limit]
        for o in timed or opts:
            if o.cycles > T:
                continue
            cost = sum(prices[r] * o.res[r] for r in prices)
            # ties: fewer cycles, then wider SIMD (bits are cheap)
            key = (cost, o.cycles, -o.simd)
            if best is None or key < best_cost:
                best, best_cost = o, key
        if best is None:
            return None
        pick[name] = best
    budget = max((o.cycles for o in pick.values()), default=0) // 2
    for name, node in pools.items():
        opts = options[name]
        if len(opts) == 1:
            pick[name] = opts[0]
            continue
        lanes = avgpool.choose_lanes(node, budget)
        pick[name] = next(o for o in opts if o.simd == lanes)
    return pick


def _total(pick: dict, shell: dict) -> dict:
    return {r: sum(o.res.get(r, 0.0) for o in pick.values()) + shell.get(r, 0.0)
            for r in perf.ALL_RESOURCES}


def _solve(options: dict, T: int, budget: dict, shell: dict, capacity: dict,
           rounds: int = 40, pools: dict | None = None) -> tuple[dict | None, bool]:
    """Cheapest folding meeting T; (pick, fits_budget). Prices start at START_PRICE/capacity
    and double for each resource the total overflows; when nothing fits, the attempt that
    overflowed least."""
    prices = {r: START_PRICE[r] / max(capacity.get(r, 1.0), 1.0) for r in perf.ALL_RESOURCES}
    best, best_over = None, math.inf
    for _ in range(rounds):
        pick = _choose(options, T, prices, pools)
        if pick is None:
            return None, False
        tot = _total(pick, shell)
        over = [r for r in budget if tot[r] > budget[r]]
        if not over:
            return pick, True
        worst = max(tot[r] / budget[r] for r in over)
        if worst < best_over:
            best, best_over = pick, worst
        for r in over:
            prices[r] *= 2.0
    return best, False


def _apply(graph: Graph, pick: dict) -> dict:
    mult = {}
    for node in graph.nodes:
        o = pick[node.name]
        node.pe, node.simd = o.pe, o.simd
        if node.kind in ("conv", "scalemac"):
            node.pipe = o.pipe          # the pipelining its resources were priced with
        if node.kind in WEIGHT_KINDS:
            node.weight_mem = o.weight_mem  # the IR carries it to the backends
        if isinstance(node, ConvNode):
            node.batch = o.batch            # frames per weight pass ('dram'), else 1
        if o.mult is not None:
            mult[node.name] = {"style": o.mult, "dsp_cap": o.dsp_cap}
            if isinstance(node, ConvNode):
                node.mult = o.mult      # the IR carries the choice to the backends
    return mult


def fold(graph: Graph, board: dict, fps: float | None = None, folding: dict | None = None,
         mult: str = "auto", util: dict | None = None, uram: bool = True) -> dict:
    """Set node.pe / node.simd in place; returns the folding summary (report.json
    'predicted'): cycles per node, interval, latency, fps, resources per node and in total,
    the multiplier implementation of int8 layers, the budget and how the folding was chosen.
    A graph with residual adds is folded twice: the shortcut FIFOs sized after the first
    pass (from its folding) are priced by the second.
    uram: when block RAM alone does not fit, try weight memories in UltraRAM (boards that
    have some); False folds as if the board had none (a folding file's 'weight_mem' still
    holds)."""
    adds = perf.unsized_skip_fifos(graph)   # sized at the end of each pass
    # the nodes' scalar fields before folding: what a block-RAM-only fold starts from
    before = [{f.name: getattr(n, f.name) for f in fields(n) if f.name not in n.ARRAYS}
              for n in graph.nodes] if uram and as_board(board).resources.get("URAM") else None
    summary = _fold(graph, board, fps, folding, mult, util, uram)
    if adds:
        summary = _fold(graph, board, fps, folding, mult, util, uram)
    if before is not None and "block_ram_only" in summary:
        # UltraRAM made it fit: what --over-budget (uram=False) builds, folded exactly
        # (a residual graph's shortcut FIFOs follow its own folding)
        alt = copy.deepcopy(graph)
        for n, saved in zip(alt.nodes, before):
            for k, v in saved.items():
                setattr(n, k, copy.copy(v))
        try:
            a = fold(alt, board, fps, folding, mult, util, uram=False)
        except BuildError:      # --fps refuses what block RAM alone cannot reach
            pass
        else:
            summary["block_ram_only"] = {k: a[k] for k in ("interval_cycles", "fps_at_clock",
                                                           "resources", "fits_budget")}
    return summary


def _attempt(pick: dict, shell: dict, clock: float) -> dict:
    """Interval, frames/s and resources of a folding the search found (not applied)."""
    tot = _total(pick, shell)
    interval = max(o.cycles for o in pick.values())
    return {"interval_cycles": interval, "fps_at_clock": clock * 1e6 / interval,
            "resources": {r: (round(v * 2) / 2 if r == "BRAM36" else int(round(v)))
                          for r, v in tot.items()}}


def _fold(graph: Graph, board: dict, fps: float | None, folding: dict | None, mult: str,
          util: dict | None, uram: bool = True) -> dict:
    styles = mult_styles(mult)
    graph.validate()            # the IR once; the unit plans then check only the folding
    b = as_board(board)
    clock = b.clock_mhz
    capacity = {r: float(v) for r, v in b.resources.items()}
    budget = _budget(board, util)
    shell = perf.shell_resources(graph).as_dict()
    shell = {r: float(shell[r]) for r in perf.ALL_RESOURCES}
    dsp_b = budget.get("DSP")
    caps = (None,) if dsp_b is None else (None, int(dsp_b))

    fixed = apply_folding_file(graph, folding) if folding is not None else {}
    pools = {n.name: n for n in graph.nodes if _pooled(n) and n.name not in fixed}
    # a folding file's weight memory holds in every attempt; the others start in 'auto'
    mem_of = {k: f["weight_mem"] for k, f in fixed.items() if f.get("weight_mem")}
    if any(m == "uram" for m in mem_of.values()) and not capacity.get("URAM"):
        who = ", ".join(k for k, m in mem_of.items() if m == "uram")
        raise BuildError(f"folding puts the weights of {who} in UltraRAM, but {b.name} has none "
                         f"(URAM 0); use \"weight_mem\": \"auto\"")

    def options_for(mems_free: tuple) -> dict:
        out = {}
        for node in graph.nodes:
            f = fixed.get(node.name, {})
            mems = (mem_of[node.name],) if node.name in mem_of else mems_free
            opts = node_options(node, (f["mult"],) if f.get("mult") else styles, caps, clock,
                                mems)
            if node.name in fixed:
                opts = [o for o in opts if o.pe == node.pe and o.simd == node.simd]
            out[node.name] = opts
        return out

    options = options_for(("auto",))
    if folding is not None:
        for node in graph.nodes:
            if not options[node.name]:
                raise BuildError(f"node {node.name}: no implementation of the folding "
                                 f"PE={node.pe}, SIMD={node.simd} with --mult {mult}")
    floor_T = max(min(o.cycles for o in opts) for opts in options.values())
    if folding is None and fps is not None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise BuildError(f"--fps must be a positive number, got {fps!r}")
        T = int(clock * 1e6 // fps)
        if T < floor_T:
            slow = max(options, key=lambda n: min(o.cycles for o in options[n]))
            raise BuildError(f"--fps {fps:g} needs at most {T} cycles per frame at {clock} MHz; "
                             f"node {slow} cannot go below {floor_T} cycles at its widest "
                             f"folding (at most {clock * 1e6 / floor_T:.0f} frames/s)")

    def search(options: dict):
        """(pick, fits, mode, target) of the mode over these options."""
        if folding is not None:
            T = max(min(o.cycles for o in options[n]) for n in fixed) if fixed else floor_T
            T = max(T, floor_T)
            pick, fits = _solve(options, T, budget, shell, capacity, pools=pools)
            return pick, fits, "file", {"interval_cycles": T}
        if fps is not None:
            T = int(clock * 1e6 // fps)
            pick, fits = _solve(options, T, budget, shell, capacity, pools=pools)
            return pick, fits, "fps", {"fps": fps, "interval_cycles": T}
        T = _fastest_fitting(options, budget, shell, capacity, pools)
        if T is None:
            T = max(o.cycles for opts in options.values() for o in opts)
        pick, fits = _solve(options, T, budget, shell, capacity, pools=pools)
        return pick, fits, "max_fps", {"interval_cycles": T}

    pick, fits, mode, target = search(options)
    block_only = with_uram = None
    uram_options = None
    if not fits and uram and capacity.get("URAM"):
        # block RAM alone does not fit: every free weight memory may go to UltraRAM
        more = options_for(("uram",))
        uram_options = {k: options[k] + (more[k] if k not in mem_of else [])
                        for k in options}
        pick2, fits2, _, target2 = search(uram_options)
        if fits2:
            block_only = dict(_attempt(pick, shell, clock), fits_budget=False)
            pick, fits, target = pick2, True, target2
        elif pick2 is not None:
            with_uram = dict(_attempt(pick2, shell, clock), fits_budget=False)
    with_dram = None
    if not fits and uram and folding is None:
        # neither fits: binary fully-connected layers may stream their weights from DRAM
        extra = dram_options(graph, b, clock)
        if extra:
            base = uram_options or options
            dram_opts = {k: base[k] + extra.get(k, []) for k in base}
            pick3, fits3, _, target3 = search(dram_opts)
            if fits3:
                if block_only is None:
                    block_only = dict(_attempt(pick, shell, clock), fits_budget=False)
                pick, fits, target = pick3, True, target3
            elif pick3 is not None:
                with_dram = dict(_attempt(pick3, shell, clock), fits_budget=False,
                                 dram=_dram_attempt(pick3, graph, b))
    if mode == "fps" and not fits:
        best_T = _fastest_fitting(options, budget, shell, capacity, pools)
        hint = (f"; the fastest folding that fits reaches {clock * 1e6 / best_T:.0f} frames/s"
                if best_T else "")
        if not best_T and uram_options is not None:
            best_u = _fastest_fitting(uram_options, budget, shell, capacity, pools)
            if best_u:
                hint = (f"; the fastest folding that fits with UltraRAM weights (loaded "
                        f"through the run-time weight port) reaches "
                        f"{clock * 1e6 / best_u:.0f} frames/s")
        tot = _total(pick, shell)
        over = ", ".join(f"{r} {tot[r]:.0f} > {budget[r]:.0f}" for r in budget
                         if tot[r] > budget[r])
        raise BuildError(f"--fps {fps:g} does not fit {b.name} ({over}){hint}")
    mults = _apply(graph, pick)
    for node in graph.nodes:
        check_folding(node)
    perf.size_skip_fifos(graph)     # from the latency model at the chosen folding
    summary = summarize(graph, board, mults)
    summary.update({"mode": mode, "target": target, "mult_choice": mult,
                    "budget": {r: round(v, 1) for r, v in budget.items()},
                    "fits_budget": all(summary["resources"][r] <= budget[r] for r in budget)})
    if block_only is not None:      # UltraRAM made it fit: what block RAM alone needed
        summary["block_ram_only"] = block_only
    if with_uram is not None:       # neither fits: what the UltraRAM attempt needed
        summary["with_uram"] = with_uram
    if with_dram is not None:       # not even with DRAM-streamed layers: what that needed
        summary["with_dram"] = with_dram
    return summary


def _fastest_fitting(options, budget, shell, capacity, pools) -> int | None:
    """Smallest achievable interval whose cheapest folding fits the budget (bisection)."""
    cands = sorted({o.cycles for opts in options.values() for o in opts})
    floor_T = max(min(o.cycles for o in opts) for opts in options.values())
    cands = [c for c in cands if c >= floor_T]
    lo, hi, best = 0, len(cands) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        _, fits = _solve(options, cands[mid], budget, shell, capacity, pools=pools)
        if fits:
            best, hi = cands[mid], mid - 1
        else:
            lo = mid + 1
    return best


def summarize(graph: Graph, board: dict, mults: dict | None = None) -> dict:
    """The folding summary for the folding the nodes carry (no search)."""
    mults = mults or {}
    pred = perf.predict(graph, board, mults)
    folding = {}
    for n in graph.nodes:
        f = {"pe": n.pe, "simd": n.simd}
        if n.name in mults:
            f["mult"] = mults[n.name]["style"]
        if perf.weight_mem_of(n) != "auto":
            f["weight_mem"] = perf.weight_mem_of(n)
        if perf.weight_mem_of(n) == "dram":
            f["batch"] = n.batch
        folding[n.name] = f
    multipliers = {n["name"]: n["mult"] for n in pred["nodes"] if "mult" in n}
    return {"cycles": {n["name"]: n["cycles"] for n in pred["nodes"]},
            "interval_cycles": pred["interval_cycles"], "latency_cycles": pred["latency_cycles"],
            "fps_at_clock": pred["fps_at_clock"], "clock_mhz": pred["clock_mhz"],
            "bottleneck": pred["bottleneck"], "folding": folding, "multipliers": multipliers,
            "resources": pred["resources"], "utilization": pred["utilization"],
            "nodes": pred["nodes"], "shell": pred["shell"],
            **({"dram": pred["dram"]} if "dram" in pred else {})}


# ---------------------------------------------------------------------------------------
# Folding files

def apply_folding_file(graph: Graph, folding: dict) -> dict:
    """Validate {node: {"pe": P, "simd": S[, "mult": M][, "weight_mem": W]}} and set the
    named nodes; returns the entries it applied. One-line BuildError on anything illegal."""
    names = [n.name for n in graph.nodes]
    unknown = [k for k in folding if k not in names]
    if unknown:
        raise BuildError(f"folding names unknown node(s) {', '.join(sorted(unknown))}; "
                         f"the nodes are: {', '.join(names)}")
    for node in graph.nodes:
        if node.name not in folding:
            continue
        f = folding[node.name]
        extra = set(f) - {"pe", "simd", "mult", "weight_mem"}
        if extra:
            raise BuildError(f"node {node.name}: unknown folding key(s) {', '.join(sorted(extra))} "
                             f"(use pe, simd, weight_mem and, for the int8 layer, mult)")
        for key in ("pe", "simd"):
            v = f.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BuildError(f"node {node.name}: {key} must be a positive integer, got {v!r}")
        node.pe, node.simd = int(f.get("pe", 1)), int(f.get("simd", 1))
        check_folding(node)
        m = f.get("mult")
        if m is not None:
            if not (isinstance(node, ConvNode) and node.matrix == "int8"):
                raise BuildError(f"node {node.name}: 'mult' applies only to the int8 (first) layer")
            if m not in perf.MULT_STYLES:
                raise BuildError(f"node {node.name}: mult must be one of {', '.join(perf.MULT_STYLES)}")
        wm = f.get("weight_mem")
        if wm is not None:
            if node.kind not in WEIGHT_KINDS:
                raise BuildError(f"node {node.name}: 'weight_mem' applies only to nodes with a "
                                 f"weight memory (conv, scalemac), not a {node.kind}")
            if wm not in perf.WEIGHT_MEMS:
                raise BuildError(f"node {node.name}: weight_mem must be one of "
                                 f"{', '.join(perf.WEIGHT_MEMS)}, got {wm!r:.20}")
            node.weight_mem = wm
    return {k: v for k, v in folding.items()}


def load_folding(path) -> dict:
    from ..core.jsonfile import read_json

    data = read_json(path, "folding file", BuildError)
    if isinstance(data, dict) and isinstance(data.get("folding"), dict):
        data = data["folding"]          # a report.json 'predicted' block or OUT/folding.json
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BuildError(f"{path}: folding must map node names to {{\"pe\": P, \"simd\": S}}")
    return data


# ---------------------------------------------------------------------------------------
# Presentation

def parse_util(text: str | None) -> dict | None:
    """'LUT=0.8,DSP=0.9' -> {'LUT': 0.8, 'DSP': 0.9} (one-line BuildError when malformed)."""
    if not text:
        return None
    out = {}
    shown = text if len(text) <= 60 else text[:57] + "..."
    for part in text.split(","):
        key, sep, val = part.partition("=")
        key = key.strip().upper().replace("BRAM", "BRAM36").replace("BRAM3636", "BRAM36")
        try:
            frac = float(val)
        except ValueError:
            frac = -1.0
        if not sep or key not in perf.ALL_RESOURCES or not 0 < frac <= 1:
            raise BuildError(f"--util {shown!r}: expected R=F pairs with R in "
                             f"{', '.join(perf.ALL_RESOURCES)} and 0 < F <= 1 (e.g. LUT=0.8,DSP=0.9)")
        if key in out:
            raise BuildError(f"--util {shown!r}: {key} is given twice")
        out[key] = frac
    return out


def uram_nodes(summary: dict) -> list[str]:
    """The nodes whose weights the folding put in UltraRAM."""
    return [k for k, f in summary.get("folding", {}).items() if f.get("weight_mem") == "uram"]


def fold_table(summary: dict, board: dict) -> str:
    """Per-node folding, cycles and predicted resources, for the build log (a URAM column
    when the folding uses UltraRAM)."""
    cap = as_board(board).resources
    t = summary["resources"]
    uram = bool(t.get("URAM"))
    rows = ["      node         PE  SIMD      cycles  share     LUT      FF  BRAM36  DSP"
            + ("  URAM" if uram else "")]
    for n in summary["nodes"]:
        r = n["resources"]
        rows.append(f"      {n['name']:<10} {n['pe']:>4} {n['simd']:>5} {n['cycles']:>11,} "
                    f"{100 * n['share']:>5.0f}% {r['LUT']:>7,} {r['FF']:>7,} {r['BRAM36']:>7} "
                    f"{r['DSP']:>4}" + (f" {r.get('URAM', 0):>5}" if uram else ""))
    rows.append(f"      total (with AXI shell)                 {t['LUT']:>7,} {t['FF']:>7,} "
                f"{t['BRAM36']:>7} {t['DSP']:>4}" + (f" {t['URAM']:>5}" if uram else ""))
    if cap:
        shown = perf.ALL_RESOURCES if uram else perf.RESOURCES
        rows.append("      of " + as_board(board).name + ": " + ", ".join(
            f"{r} {100 * t[r] / cap[r]:.0f}%" for r in shown if cap.get(r)))
    d = summary.get("dram")
    if d:
        for name, v in d["layers"].items():
            rows.append(f"      {name}: weights streamed from DRAM, batch {v['batch']}, "
                        f"{v['bytes_per_batch']:,} bytes per batch, {v['bound']}-bound "
                        f"({v['compute_cycles_per_batch']:,} compute / "
                        f"{v['dram_cycles_per_batch']:,.0f} DRAM cycles per batch)")
        rows.append(f"      DRAM bandwidth: {d['bandwidth_mbps']:,.1f} MB/s of "
                    f"{d['bandwidth_available_mbps']:,.0f} MB/s ({d['port_bits']}-bit port at "
                    f"{summary['clock_mhz']:g} MHz, board file)")
    return "\n".join(rows)


def fold_warnings(summary: dict) -> list[str]:
    out = []
    if not summary.get("fits_budget", True):
        over = [f"{r} {summary['resources'][r]:,} > {summary['budget'][r]:,.0f}"
                for r in summary["budget"] if summary["resources"][r] > summary["budget"][r]]
        out.append("the predicted resources exceed the folding budget (" + ", ".join(over) + ")")
    if summary.get("dram"):
        d = summary["dram"]
        out.append(f"the weights of {_names(list(d['layers']))} stream from DRAM "
                   f"({d['bandwidth_mbps']:,.1f} of {d['bandwidth_available_mbps']:,.0f} MB/s); "
                   f"no backend renders DRAM-streamed layers yet")
    held = uram_nodes(summary)
    if held:
        out.append(f"the weights of {_names(held)} are in UltraRAM "
                   f"({summary['resources'].get('URAM', 0)} blocks), which has no initial "
                   f"contents: the driver loads them through the run-time weight port "
                   f"(docs/WEIGHTS.md)")
    supported = units.conv.MULT_STYLES
    for name, m in summary.get("multipliers", {}).items():
        if m["style"] not in supported and m["products"]:
            out.append(f"{name}: the folding assumes '{m['style']}' multipliers "
                       f"({m['products']} int8 products on {m['dsp']} DSP48 + {m['lut_products']} in "
                       f"LUTs); the RTL backend implements {', '.join(supported)} only, so synthesis "
                       f"will differ from the prediction")
    return out


def _names(names: list, most: int = 3) -> str:
    return ", ".join(names[:most]) + (f" (+{len(names) - most} more)" if len(names) > most else "")


def _fps(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _amount(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 or float(v).is_integer() else f"{v:,.1f}"


def _needs(res: dict, budget: dict, cap, keys) -> str:
    return ", ".join(f"{r} {res[r]:,} (budget {budget[r]:,.0f} of {cap[r]:,})" for r in keys)


def _fold_elsewhere(graph: Graph, board) -> dict | None:
    """The default folding of a copy of the graph for another board (UltraRAM allowed); None
    when it does not fit or cannot be folded there."""
    try:
        s = fold(copy.deepcopy(graph), board)
    except BuildError:
        return None
    return s if s.get("fits_budget") else None


def budget_refusal(graph: Graph, summary: dict, board) -> str | None:
    """Why a folding that exceeds the board's budget must not be built, as one line with
    the numbers (what is needed, what the board has, the largest consumers, what would make
    it fit); None when it fits. When no board of boards/ has room in block RAM, the boards
    with UltraRAM are folded for (a copy of) the graph and named with their figures."""
    streamed = dram_refusal(graph, summary, board)
    if streamed:
        return streamed
    if summary.get("fits_budget", True):
        return None
    from .boards import board_names, load_board

    board = as_board(board)
    res, budget, cap = summary["resources"], summary["budget"], board.resources
    over = [r for r in budget if res[r] > budget[r]]
    worst = max(over, key=lambda r: res[r] / budget[r])
    need = _needs(res, budget, cap, over)
    top = sorted(summary["nodes"], key=lambda n: -n["resources"].get(worst, 0))[:2]
    who = ", ".join(f"{n['name']} {n['resources'][worst]:,}" for n in top
                    if n["resources"].get(worst))
    bits = {}
    for node in graph.nodes:
        for m in units.plan(node).memories:
            bits[m.role] = bits.get(m.role, 0) + m.bits
    mem = ", ".join(f"{k} {v / 1e6:.1f} Mbit" for k, v in sorted(bits.items(), key=lambda kv: -kv[1])
                    if v >= 1e6)
    others = []
    for name in board_names():
        try:
            others.append(load_board(name))
        except BuildError:
            continue
    others = [o for o in others if o.name != board.name]
    bigger = [o.name for o in others
              if all(res[r] <= o.resources.get(r, 0) * DEFAULT_UTIL[r] for r in over)]
    if bigger:
        where = f"on {', '.join(bigger[:3])}"
    else:
        # no board has room in block RAM: fold for those with UltraRAM, name the fastest
        found = [(s, o) for o in others if o.resources.get("URAM")
                 for s in [_fold_elsewhere(graph, o)] if s is not None]
        if found:
            s, o = max(found, key=lambda so: so[0]["fps_at_clock"])
            t = s["resources"]
            where = (f"on {o.name}" + (f" with UltraRAM (URAM {t['URAM']}, BRAM36 {t['BRAM36']:,}, "
                                       f"{_fps(s['fps_at_clock'])} frames/s, weights loaded at "
                                       f"run time)" if uram_nodes(s) else ""))
        else:
            where = "on a bigger board (none in boards/ has room, UltraRAM included)"
    still = ""
    if "with_uram" in summary:
        w = summary["with_uram"]["resources"]
        still = [r for r in budget if w[r] > budget[r]]
        still = ("; with UltraRAM still over budget: " + ", ".join(f"{r} {w[r]:,}" for r in still)
                 + (f" (budget {_amount(budget[still[0]])})" if len(still) == 1 else ""))
    msg = (f"{graph.name} does not fit {board.name}: the cheapest folding found needs {need}, "
           f"most in {who}" + (f" ({mem} on chip)" if mem else "") + still +
           f"; --over-budget builds it anyway ({_fps(summary['fps_at_clock'])} frames/s). It "
           f"would fit {where}, with fewer channels, or with weights off chip (not supported "
           f"yet)")
    if "with_dram" in summary:
        msg = msg.replace(", with fewer channels, or with weights off chip (not supported yet)",
                          " or with fewer channels. " + _dram_still(summary, budget, cap))
    return msg


def _dram_layers(d: dict) -> str:
    """'fc1 (batch 8, PE 32 x SIMD 16)' for the DRAM-streamed layers of a dram block."""
    return ", ".join(f"{k} (batch {v['batch']}, PE {v['pe']} x SIMD {v['simd']})"
                     for k, v in d["layers"].items())


def _dram_still(summary: dict, budget: dict, cap) -> str:
    """What the DRAM-streamed attempt still lacks, and the --util that would let it fit."""
    w = summary["with_dram"]
    d, res = w["dram"], w["resources"]
    over = [r for r in budget if res[r] > budget[r]]
    need = ", ".join(f"{r} {res[r]:,} (budget {budget[r]:,.1f})" for r in over)
    util = ",".join(f"{r}={math.ceil(100 * res[r] / cap[r]) / 100:g}" for r in over
                    if cap.get(r) and res[r] <= cap[r])
    hint = (f"; --util {util} would admit that folding" if util and
            len(util.split(",")) == len(over) else "")
    return (f"With the weights of {_dram_layers(d)} streamed from DRAM it still needs {need}"
            + hint + f" (the board file assumes {d['bandwidth_available_mbps']:,.0f} MB/s of "
            f"DRAM bandwidth)")


def dram_refusal(graph: Graph, summary: dict, board) -> str | None:
    """Why a folding that streams weights from DRAM must not be built yet (the HLS, RTL,
    driver and block-design backends do not render cf_axi_wread / cf_mvu_dram), as one line
    with the numbers: the predicted frames/s, each streamed layer's batch and folding, the
    bandwidth it uses of what the board file assumes; None when nothing streams."""
    d = summary.get("dram")
    if not d:
        return None
    board = as_board(board)
    res, cap = summary["resources"], board.resources
    head = (f"{graph.name} fits {board.name} only with the weights of {_dram_layers(d)} "
            f"streamed from DRAM" if summary.get("block_ram_only") else
            f"the folding of {graph.name} for {board.name} streams the weights of "
            f"{_dram_layers(d)} from DRAM")
    layer = next(iter(d["layers"].values()))
    msg = (f"{head}: {_fps(summary['fps_at_clock'])} frames/s at {summary['clock_mhz']:g} MHz "
           f"predicted, {d['bandwidth_mbps']:,.1f} MB/s of the {d['bandwidth_available_mbps']:,.0f}"
           f" MB/s of DRAM bandwidth the board file assumes ({layer['bytes_per_batch']:,} bytes "
           f"per batch), BRAM36 {res['BRAM36']:,} of {cap.get('BRAM36', 0):,}, LUT "
           f"{res['LUT']:,} of {cap.get('LUT', 0):,}; but no backend renders DRAM-streamed "
           f"layers yet (the units are in rtl/dram/)")
    b = summary.get("block_ram_only")
    if b:
        msg += f"; --over-budget builds the on-chip folding anyway ({_fps(b['fps_at_clock'])} frames/s)"
    return msg


