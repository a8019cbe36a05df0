"""Technology models per FPGA family: cell costs, memory and multiplier mapping, the cell
counter of synthesis results. Every family maps to one model module."""

from __future__ import annotations

from . import xc7

# UltraScale+ parts are priced with the 7-series model (see xc7's docstring).
MODELS = {"xc7": xc7, "zynq": xc7, "xcup": xc7, "zynquplus": xc7}


def for_family(family: str | None):
    return MODELS.get(str(family or "xc7").lower(), xc7)
