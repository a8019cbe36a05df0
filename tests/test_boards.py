"""generator/hw/boards.py: the typed, frozen Board with every default resolved once, and the
consumers that read it (HLS / RTL / host backends, folding, performance model, package)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.hw import fold, perf
from generator.backends import hls, host, rtl
from generator.hw.boards import (OPTIONAL, PARTIAL_DEFAULTS, REQUIRED, Board, as_board, board_names,
                              load_board)
from generator.core.errors import BuildError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent / "hls_unit_tb"))
import hls_graphs as graphs  # noqa: E402

#: board.json's keys before Board (build.py wrote the validated dict), then the DRAM fields
BOARD_JSON_KEYS = ["name", "description", "part", "vivado_board_part", "board_part", "preset",
                   "hp_port", "family", "ps", "resources", "clock_mhz", "dma_data_width",
                   "dram_peak_mbps", "dram_port_bits", "dram_efficiency"]


def graph(tmp: Path, name: str = "demo"):
    g, px, tr = graphs.demo_chain(np.random.default_rng(1), frames=2, h=9, w=8)
    g.name = name
    g.save(tmp)
    return g


def minimal_file(tmp: Path, ps="zynq_ultra", family="xcup", **extra) -> Path:
    """A board file with only the required fields."""
    d = {"name": "mini", "part": "xczu3eg-sbva484-1-i", "family": family, "ps": ps, "clock_mhz": 150,
         "resources": {"LUT": 70560, "FF": 141120, "BRAM36": 216, "DSP": 360}, **extra}
    p = tmp / "mini.json"
    p.write_text(json.dumps(d))
    return p


# ----------------------------------------------------------------------------- the Board itself

@pytest.mark.parametrize("name", board_names())
def test_stock_boards_resolved_and_typed(name):
    b = load_board(name)
    assert isinstance(b, Board)
    for f in dataclasses.fields(Board):
        v = getattr(b, f.name)
        assert v is not None, f.name
    assert isinstance(b.clock_mhz, (int, float)) and 1 <= b.clock_mhz <= 1000
    assert b.zynqmp == (b.ps == "zynq_ultra") == (b.family == "xcup")
    assert b.dma_data_width == (128 if b.zynqmp else 64)
    assert b.hp_port == ("S_AXI_HP0_FPD" if b.zynqmp else "S_AXI_HP0")
    assert b.board_part and b.part and set(b.resources) >= {"LUT", "FF", "BRAM36", "DSP"}
    assert b.clock_ns == round(1000 / b.clock_mhz, 3)
    raw = json.loads((REPO / "boards" / f"{name}.json").read_text())
    assert b.board_part == raw["vivado_board_part"]
    assert Board.from_json(b.to_json()) == b                     # board.json round trip
    assert list(b.to_json()) == BOARD_JSON_KEYS                  # same keys as before
    assert b.report_info() == {k: raw[k] for k in ("name", "part", "resources", "clock_mhz")}


def test_board_is_immutable():
    b = load_board("pynq-z2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.clock_mhz = 200
    with pytest.raises(TypeError):
        b.resources["LUT"] = 1          # a read-only mapping
    d = b.to_json()
    d["resources"]["LUT"] = 1           # to_json is a copy
    assert b.resources["LUT"] == 53200


def test_with_clock():
    b = load_board("pynq-z2")
    c = b.with_clock(125)
    assert c.clock_mhz == 125.0 and c.clock_ns == 8.0 and b.clock_mhz == 100
    assert dataclasses.replace(c, clock_mhz=100) == b
    for bad in (0, -1, 1001, float("nan"), float("inf"), "150", True, None):
        with pytest.raises(BuildError, match="clock_mhz"):
            b.with_clock(bad)


def test_missing_optional_fields_get_the_defaults_every_consumer_sees(tmp_path):
    """A board file with only the required fields: boards.py fills the defaults once; the HLS
    manifest, the block design, the RTL manifest, the host metadata, the folding summary and a
    partial dict of the same fields all see the same values."""
    path = minimal_file(tmp_path)
    b = load_board(str(path))
    assert (b.description, b.board_part, b.preset) == ("mini", "", "")
    assert (b.dma_data_width, b.hp_port, b.hp_gp_index, b.zynqmp) == (128, "S_AXI_HP0_FPD", 2, True)
    raw = json.loads(path.read_text())
    assert as_board(raw) == b and as_board(b) is b

    g = graph(tmp_path)
    hls.render(g, tmp_path, b)
    man = json.loads((tmp_path / "hls" / "manifest.json").read_text())["board"]
    assert man == {"name": "mini", "part": b.part, "family": "xcup", "zynqmp": True, "clock_mhz": 150.0,
                   "clock_ns": 6.667, "board_part": "", "preset": "", "dma_data_width": 128,
                   "hp_port": "S_AXI_HP0_FPD", "hp_gp_index": 2}
    bd = (tmp_path / "vivado" / "bd.tcl").read_text()
    assert "zynq_ultra_ps_e" in bd and "PSU__USE__S_AXI_GP2 {1}" in bd and "/ps/S_AXI_HP0_FPD" in bd
    rman = rtl.render(g, tmp_path, b)["board"]
    assert rman == {"name": "mini", "part": b.part, "family": "xcup", "clock_mhz": 150,
                    "resources": dict(b.resources)}
    meta = json.loads((host.render(g, tmp_path, b) / "cfgen_meta.json").read_text())
    assert (meta["board"], meta["part"], meta["clock_mhz"], meta["dma"]["data_width_bits"]) == \
        ("mini", b.part, 150, 128)
    assert perf.predict(g, b)["clock_mhz"] == 150
    # the same values from the raw dict (a library caller that never loaded the file)
    assert hls._board_info(raw) == hls._board_info(b)
    assert perf.predict(g, raw)["clock_mhz"] == 150


def test_old_defaults_disagreed_now_one_place(tmp_path):
    """Before Board: an UltraScale+ dict without dma_data_width gave 128 in the HLS block
    design but 64 in cfgen_meta.json (the driver's DMA alignment); a dict without a name was
    'board' (HLS) or 'generic' (RTL); without a part 'xc7z020clg400-1' (HLS) or '' (RTL)."""
    g = graph(tmp_path)
    mpsoc = {"name": "u", "part": "xczu7ev-ffvc1156-2-e", "clock_mhz": 200}
    assert hls._board_info(mpsoc)["dma_data_width"] == 128
    meta = host.build_meta(g.to_dict(), tmp_path, mpsoc)
    assert meta["dma"]["data_width_bits"] == 128
    assert as_board(mpsoc).family == "xcup" and as_board(mpsoc).ps == "zynq_ultra"
    info, rman = hls._board_info(None), rtl.render(g, tmp_path, None)["board"]
    assert info["name"] == rman["name"] == PARTIAL_DEFAULTS["name"]
    assert info["part"] == rman["part"] == PARTIAL_DEFAULTS["part"]
    assert info["family"] == rman["family"] == "xc7" and rman["resources"] == {}


def test_partial_dicts_checked_like_board_files():
    with pytest.raises(BuildError, match="does not match"):
        as_board({"family": "xc7", "ps": "zynq_ultra"})
    with pytest.raises(BuildError, match="unknown field"):
        as_board({"name": "x", "speed": 3})
    with pytest.raises(BuildError, match="hp_port"):
        as_board({"hp_port": "S_AXI_HP0 {1}] ; exec touch pwned"})
    with pytest.raises(BuildError, match="resources.DSP"):
        as_board({"resources": {"LUT": 1, "FF": 1, "BRAM36": 1}})
    with pytest.raises(BuildError, match="a Board or a dict"):
        as_board("pynq-z2")
    assert as_board({}) == as_board(None)


def test_board_file_ps_family_mismatch_refused(tmp_path):
    with pytest.raises(BuildError, match="'ps' zynq7 does not match 'family' xcup"):
        load_board(str(minimal_file(tmp_path, ps="zynq7")))


def test_required_and_optional_are_board_json_keys():
    assert set(REQUIRED) | set(OPTIONAL) == set(BOARD_JSON_KEYS)


# ----------------------------------------------------------------------------- host metadata

def test_host_metadata_does_not_need_the_hls_manifest(tmp_path):
    """Render the host backend before the HLS backend, then after it: the same metadata, and
    the interface it computes is what hls/manifest.json records."""
    b = load_board("kv260")
    g = graph(tmp_path, name="my--net 2")
    assert not (tmp_path / "hls").exists()
    first = json.loads((host.render(g, tmp_path, b) / "cfgen_meta.json").read_text())
    hls.render(g, tmp_path, b)
    man = json.loads((tmp_path / "hls" / "manifest.json").read_text())
    second = json.loads((host.render(g, tmp_path, b) / "cfgen_meta.json").read_text())
    assert first == second
    assert first["ip"] == {"top": man["top"], "control": man["ports"]["control"],
                           "reps_register": man["ports"]["reps"]}
    assert first["ip"]["top"] == "cf_my_net_2"
    itf = host.hls_interface(g.to_dict())
    assert itf["top"] == man["top"] and itf["ports"] == man["ports"]
    for k in ("input", "output"):
        assert (itf[k]["bits"], itf[k]["axi_bits"]) == (man[k]["bits"], man[k]["axi_bits"])
        assert itf[k]["dma_bits"] == hls.dma_bits(man[k]["axi_bits"])
    assert first["dma"]["data_width_bits"] == b.dma_data_width == 128


def test_build_folder_board_comes_from_board_json(tmp_path):
    """package / notebook read OUT/board.json (a custom board file, --clock included), not
    the board name in report.json (unknown for a .json board; --clock lost)."""
    b = load_board(str(minimal_file(tmp_path))).with_clock(125)
    (tmp_path / "board.json").write_text(json.dumps(b.to_json()))
    (tmp_path / "report.json").write_text(json.dumps({"board": "mini"}))
    assert host.build_board(tmp_path) == b
    (tmp_path / "board.json").unlink()
    with pytest.raises(BuildError, match="unknown board"):
        host.build_board(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"board": "pynq-z2"}))
    assert host.build_board(tmp_path) == load_board("pynq-z2")
    (tmp_path / "board.json").write_text("{")
    with pytest.raises(BuildError, match="board.json"):
        host.build_board(tmp_path)


def test_fold_reads_the_board(tmp_path):
    g = graph(tmp_path)
    b = load_board("pynq-z2").with_clock(125)
    s = fold.fold(g, b)
    assert s["clock_mhz"] == 125.0
    assert "of pynq-z2:" in fold.fold_table(s, b)


# ----------------------------------------------------------------------------- DRAM bandwidth

def test_stock_boards_state_their_dram():
    """Every stock board names its DDR peak, the HP port width and the efficiency; the usable
    bandwidth is the lower of port x clock and the DDR peak, times the efficiency."""
    want = {"pynq-z1": (2133, 64, 600.0), "pynq-z2": (2100, 64, 600.0),
            "ultra96-v2": (8533, 128, 1800.0), "zcu104": (19200, 128, 2400.0),
            "kv260": (19200, 128, 2400.0)}
    assert set(want) <= set(board_names())
    for name, (peak, bits, mbps) in want.items():
        raw = json.loads((REPO / "boards" / f"{name}.json").read_text())
        assert (raw["dram_peak_mbps"], raw["dram_port_bits"], raw["dram_efficiency"]) == \
            (peak, bits, 0.75)
        b = load_board(name)
        assert b.dram_port_bits == b.dma_data_width
        assert b.dram_mbps == pytest.approx(mbps)
        assert b.dram_bytes_per_cycle == pytest.approx(mbps / b.clock_mhz)


def test_dram_bandwidth_follows_the_clock_until_the_ddr_limits():
    b = load_board("pynq-z2")
    assert b.with_clock(50).dram_mbps == pytest.approx(300.0)       # the port limits
    assert b.with_clock(300).dram_mbps == pytest.approx(0.75 * 2100)  # the DDR limits
    assert Board.from_json(b.with_clock(300).to_json()).dram_mbps == pytest.approx(1575.0)


def test_dram_defaults_per_ps_kind(tmp_path):
    mp = load_board(str(minimal_file(tmp_path)))
    assert (mp.dram_peak_mbps, mp.dram_port_bits, mp.dram_efficiency) == (8533, 128, 0.75)
    z7 = as_board({"name": "z7"})           # a partial dict: the generic Zynq-7020
    assert (z7.dram_peak_mbps, z7.dram_port_bits, z7.dram_efficiency) == (2100, 64, 0.75)
    assert z7.dram_mbps == pytest.approx(600.0)


@pytest.mark.parametrize("key, value, msg", [
    ("dram_peak_mbps", 0, r"'dram_peak_mbps' must be a number in \[1, 1e\+06\]"),
    ("dram_peak_mbps", -5, "dram_peak_mbps"), ("dram_peak_mbps", True, "dram_peak_mbps"),
    ("dram_peak_mbps", "800", "dram_peak_mbps"), ("dram_peak_mbps", float("nan"), "dram_peak_mbps"),
    ("dram_peak_mbps", 2e6, "dram_peak_mbps"),
    ("dram_port_bits", 48, "'dram_port_bits' must be one of 32, 64, 128"),
    ("dram_port_bits", 64.0, "dram_port_bits"), ("dram_port_bits", True, "dram_port_bits"),
    ("dram_efficiency", 0, r"'dram_efficiency' must be a number in \(0, 1\]"),
    ("dram_efficiency", 1.5, "dram_efficiency"), ("dram_efficiency", None, "dram_efficiency"),
])
def test_dram_fields_validated(tmp_path, key, value, msg):
    if value == value:      # NaN is no JSON: the strict reader refuses such a file first
        with pytest.raises(BuildError, match=msg):
            load_board(str(minimal_file(tmp_path, **{key: value})))
    with pytest.raises(BuildError, match=msg):
        as_board({"name": "x", key: value})


def test_dram_fields_accepted(tmp_path):
    b = load_board(str(minimal_file(tmp_path, dram_peak_mbps=1000.5, dram_port_bits=32,
                                    dram_efficiency=1)))
    assert b.dram_mbps == pytest.approx(min(4 * 150, 1000.5))
    assert Board.from_json(b.to_json()) == b
