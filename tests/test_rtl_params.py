"""Elaboration-time parameter checks of the Verilog library (rtl/*.v, docs/RTL.md,
"Parameter checks").

Every unit refuses illegal parameter combinations at elaboration time with an instance
of a module that does not exist, named `<unit>_needs_<rule>`, inside a generate-if
(`if (!(RULE)) begin : g_bad_x  <unit>_needs_<rule> u_bad (); end`). Every tool stops on
it and names the rule. Here, per rule, one illegal instance must fail under Verilator
(`--lint-only -Wall`, as tests/test_rtl_units.py lints) and under Icarus (`-g2012`, as
cocotb compiles, `-t null`: elaboration without code generation) and Yosys (read_verilog +
`hierarchy -check`, as generator/flows/synth.py reads the library) with the rule's name in the
output, and legal instances (edge cases included) must elaborate cleanly under all three.
Every `_needs_` rule in rtl/*.v must have an illegal case below (and every unit a legal
one), so a new rule cannot go untested. A missing tool fails the test with
generator.core.tools.ToolMissing's message (as in tests/test_rtl_units.py).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from generator.core import tools

REPO = Path(__file__).resolve().parent.parent
RTL = REPO / "rtl"
pytestmark = pytest.mark.sim

# (module, parameters, rule): the rule's module name is f"{module}_needs_{rule}"
ILLEGAL = [
    ("cf_fifo", {"W": 0}, "W_at_least_1"),
    ("cf_fifo", {"DEPTH": 3}, "DEPTH_1_or_a_power_of_2"),
    ("cf_fifo", {"DEPTH": 0}, "DEPTH_1_or_a_power_of_2"),
    ("cf_rom", {"DEPTH": 0}, "W_and_DEPTH_at_least_1"),
    ("cf_rom", {"STYLE": 3}, "STYLE_0_to_2"),
    ("cf_ram", {"DEPTH": 0}, "W_and_DEPTH_at_least_1"),
    ("cf_ram", {"STYLE": 4}, "STYLE_0_to_3"),
    ("cf_wload", {"NMEM": 0}, "NMEM_and_WMAX_at_least_1_and_AW_1_to_30"),
    ("cf_wload", {"AW": 31}, "NMEM_and_WMAX_at_least_1_and_AW_1_to_30"),
    ("cf_wload", {"NMEM": 2, "WMAX": 40, "AW": 2, "DEPTHS": "64'h0000000100000005",
                  "CHUNKS": "64'h0000000100000002"},
     "every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32"),
    ("cf_wload", {"NMEM": 2, "WMAX": 40, "AW": 3, "DEPTHS": "64'h0000000100000005",
                  "CHUNKS": "64'h0000000100000003"},
     "every_DEPTH_1_to_2_pow_AW_and_CHUNKS_1_to_WMAX_over_32"),
    ("cf_add", {"W": 0}, "W_at_least_1"),
    ("cf_check", {"N": 0}, "W_and_N_at_least_1"),
    ("cf_widen", {"SF": 0}, "IW_R_SF_NF_at_least_1"),
    ("cf_widen", {"R": 0}, "IW_R_SF_NF_at_least_1"),
    ("cf_maxpool", {"KK": 0}, "C_B_and_KK_at_least_1"),
    ("cf_maxpool", {"FD": 3}, "FD_1_or_a_power_of_2"),
    ("cf_globalsum", {"N": 0}, "C_IB_N_OB_at_least_1"),
    ("cf_globalsum", {"ISIGNED": 2}, "ISIGNED_0_or_1"),
    ("cf_globalsum", {"FD": 6}, "FD_1_or_a_power_of_2"),
    ("cf_avgpool", {"KK": 0}, "C_IB_KK_SW_TW_at_least_1"),
    ("cf_avgpool", {"C": 4, "SIMD": 3}, "SIMD_dividing_C"),
    ("cf_avgpool", {"C": 4, "SIMD": 8}, "SIMD_dividing_C"),
    ("cf_avgpool", {"SIMD": 0}, "SIMD_dividing_C"),
    ("cf_avgpool", {"ISIGNED": 2}, "ISIGNED_0_or_1"),
    ("cf_avgpool", {"FD": 0}, "FD_1_or_a_power_of_2"),
    ("cf_avgpool", {"WRT": 1, "LA": 1, "LD": 35}, "WRT_0_or_1_with_LA_LD_holding_the_thresholds"),
    ("cf_swg", {"H": 0, "P": 2}, "H_W_C_B_NF_at_least_1"),
    ("cf_swg", {"NF": 0}, "H_W_C_B_NF_at_least_1"),
    ("cf_swg", {"C": 4, "SIMD": 3}, "SIMD_dividing_C"),
    ("cf_swg", {"SIMD": 0}, "SIMD_dividing_C"),
    ("cf_swg", {"S": 0}, "K_S_at_least_1_P_at_least_0_and_K_within_the_padded_image"),
    ("cf_swg", {"P": -1}, "K_S_at_least_1_P_at_least_0_and_K_within_the_padded_image"),
    ("cf_swg", {"K": 3, "P": 0, "H": 2, "W": 8, "DEPTH": 64},
     "K_S_at_least_1_P_at_least_0_and_K_within_the_padded_image"),
    ("cf_swg", {"K": 3, "P": 0, "H": 8, "W": 2, "DEPTH": 64},
     "K_S_at_least_1_P_at_least_0_and_K_within_the_padded_image"),
    ("cf_swg", {"TAPS": 2}, "TAPS_1_or_K_with_SIMD_equal_C"),
    ("cf_swg", {"TAPS": 0}, "TAPS_1_or_K_with_SIMD_equal_C"),
    ("cf_swg", {"TAPS": 3, "C": 2, "SIMD": 1}, "TAPS_1_or_K_with_SIMD_equal_C"),
    ("cf_swg", {"DEPTH": 24}, "DEPTH_a_power_of_2_holding_a_window_and_a_row_change"),
    # H = W = 4, K 3, S 1: (K-1)*W + K + (S-1)*W + K + 2 = 16
    ("cf_swg", {"DEPTH": 8}, "DEPTH_a_power_of_2_holding_a_window_and_a_row_change"),
    ("cf_swg", {"S": 2, "H": 7, "W": 7, "DEPTH": 16},
     "DEPTH_a_power_of_2_holding_a_window_and_a_row_change"),
    ("cf_swg", {"RSTYLE": 2}, "RSTYLE_0_or_1"),
    ("cf_mvu", {"MATRIX": 2}, "MATRIX_0_or_1"), ("cf_mvu", {"DG": 5}, "DG_1_to_4"),
    ("cf_mvu", {"TW": 0}, "KD_CO_OB_AW_TW_at_least_1_and_FRAC_at_least_0"),
    ("cf_mvu", {"ACT": 1, "OB": 6, "TW": 10, "FRAC": -1},
     "KD_CO_OB_AW_TW_at_least_1_and_FRAC_at_least_0"),
    ("cf_mvu", {"SIMD": 3}, "SIMD_dividing_KD"),
    ("cf_mvu", {"SIMD": 0}, "SIMD_dividing_KD"),
    ("cf_mvu", {"SIMD": 16}, "SIMD_dividing_KD"),
    ("cf_mvu", {"PE": 3}, "PE_dividing_CO"),
    ("cf_mvu", {"PE": 0}, "PE_dividing_CO"),
    ("cf_mvu", {"OB": 2}, "ACT_0_with_OB_1_or_ACT_1"),
    ("cf_mvu", {"ACT": 2}, "ACT_0_with_OB_1_or_ACT_1"),
    ("cf_mvu", {"MULT": 1}, "MULT_0_or_MULT_1_with_MATRIX_1"),
    ("cf_mvu", {"MATRIX": 1, "AW": 20, "TW": 20, "MULT": 2}, "MULT_0_or_MULT_1_with_MATRIX_1"),
    ("cf_mvu", {"WSTYLE": 3}, "WSTYLE_0_to_2"),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18, "WSTYLE": 4}, "WSTYLE_0_to_3_with_WRT_1"),
    ("cf_mvu", {"WRT": 2}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 17}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_mvu", {"PIPE": 3}, "PIPE_0_to_2_and_PCH_at_least_1"),
    ("cf_mvu", {"PIPE": 2, "PCH": 0}, "PIPE_0_to_2_and_PCH_at_least_1"),
    ("cf_mvu", {"FD": 3}, "FD_1_to_128_a_power_of_2"),
    ("cf_mvu", {"FD": 256}, "FD_1_to_128_a_power_of_2"),
    ("cf_scalemac", {"OB": 0}, "IB_CI_CO_SCW_GW_ZW_BW_OB_at_least_1"),
    ("cf_scalemac", {"N": 12}, "N_dividing_CI"),
    ("cf_scalemac", {"N": 0}, "N_dividing_CI"),
    ("cf_scalemac", {"SIMD": 3}, "SIMD_dividing_CI_and_dividing_or_a_multiple_of_N"),
    ("cf_scalemac", {"SIMD": 0}, "SIMD_dividing_CI_and_dividing_or_a_multiple_of_N"),
    ("cf_scalemac", {"CI": 24, "N": 6, "SIMD": 4},
     "SIMD_dividing_CI_and_dividing_or_a_multiple_of_N"),
    ("cf_scalemac", {"PE": 3}, "PE_dividing_CO"),
    ("cf_scalemac", {"PE": 0}, "PE_dividing_CO"),
    ("cf_scalemac", {"RELU": 2}, "ISIGNED_and_RELU_0_or_1"),
    ("cf_scalemac", {"WSTYLE": 3}, "WSTYLE_0_to_2"),
    ("cf_scalemac", {"WRT": 1, "LA": 2, "LD": 32, "WSTYLE": 4}, "WSTYLE_0_to_3_with_WRT_1"),
    ("cf_scalemac", {"WRT": 1, "LA": 1, "LD": 32}, "WRT_0_or_1_with_LA_LD_holding_the_memories"),
    ("cf_scalemac", {"FD": 3}, "FD_1_to_128_a_power_of_2"),
    ("cf_scalemac", {"PIPE": 2}, "PIPE_0_or_1"),
    ("cf_resadd", {"AB": 0}, "C_AB_BB_MW_BW_ZW_OB_at_least_1"),
    ("cf_resadd", {"SIMD": 3}, "SIMD_dividing_C"),
    ("cf_resadd", {"SIMD": 0}, "SIMD_dividing_C"),
    ("cf_resadd", {"BSIGNED": 2}, "ASIGNED_BSIGNED_RELU_0_or_1"),
    ("cf_resadd", {"SH": -1}, "SH_at_least_0"),
    ("cf_resadd", {"FD": 3}, "FD_1_or_a_power_of_2"),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 71}, "WRT_0_or_1_with_LA_LD_holding_the_parameters"),
    ("cf_fork", {"W": 0}, "W_at_least_1"),
    ("cf_axis_in", {"BEATS": 0}, "W_and_BEATS_at_least_1"),
    ("cf_axis_in", {"W": 16, "TW": 12}, "TW_whole_bytes_holding_W"),
    ("cf_axis_out", {"BEATS": 0}, "W_and_BEATS_at_least_1"),
    ("cf_axis_out", {"W": 9, "TW": 9}, "TW_whole_bytes_holding_W"),
    ("cf_axis_out", {"FD": 3}, "FD_a_power_of_2_at_least_2"),
]

# legal instances, the edges of the rules included
LEGAL = [
    ("cf_fifo", {}), ("cf_fifo", {"W": 1, "DEPTH": 1}), ("cf_fifo", {"W": 5, "DEPTH": 16}),
    ("cf_rom", {"W": 1, "DEPTH": 1}), ("cf_rom", {"STYLE": 2, "DEPTH": 5}),
    ("cf_ram", {"W": 1, "DEPTH": 1}), ("cf_ram", {"STYLE": 3, "DEPTH": 5, "W": 72}),
    ("cf_wload", {}),
    ("cf_wload", {"NMEM": 3, "WMAX": 100, "AW": 4, "DEPTHS": "96'h000000100000000100000003",
                  "CHUNKS": "96'h000000040000000100000002"}),
    ("cf_add", {"W": 1}),
    ("cf_check", {"W": 3, "N": 1}),
    ("cf_widen", {"R": 1, "SF": 1, "NF": 1}), ("cf_widen", {"IW": 3, "R": 3, "SF": 3, "NF": 2}),
    ("cf_maxpool", {"C": 1, "KK": 1, "FD": 1}), ("cf_maxpool", {"KK": 9, "C": 3, "FD": 4}), ("cf_maxpool", {"KK": 4, "C": 2, "B": 5}),
    ("cf_globalsum", {"N": 1, "ISIGNED": 1, "FD": 1}),
    ("cf_avgpool", {"C": 6, "SIMD": 3, "KK": 9}), ("cf_avgpool", {"C": 6, "SIMD": 1, "ISIGNED": 1}),
    ("cf_swg", {}),
    # the smallest legal depth: H = W = 7, K 3, S 2: 14 + 3 + 7 + 3 + 2 = 29 -> 32
    ("cf_swg", {"S": 2, "H": 7, "W": 7, "DEPTH": 32}),
    # K = H + 2P (one output row), K 1 with the smallest depth (4), whole-row taps
    ("cf_swg", {"K": 3, "P": 0, "H": 3, "W": 5, "C": 2, "SIMD": 2, "DEPTH": 32}),
    ("cf_swg", {"K": 1, "P": 0, "C": 4, "SIMD": 2, "NF": 3, "DEPTH": 4}),
    ("cf_swg", {"K": 3, "P": 1, "C": 2, "SIMD": 2, "TAPS": 3, "H": 5, "W": 5, "DEPTH": 32,
                "RSTYLE": 1}),
    ("cf_mvu", {}), ("cf_mvu", {"SIMD": 8, "KD": 8, "PE": 4, "CO": 4, "FD": 1}),
    ("cf_mvu", {"ACT": 1, "OB": 6, "TW": 10, "FRAC": 2, "FD": 128}),
    ("cf_mvu", {"MATRIX": 1, "AW": 21, "TW": 21, "MULT": 1, "PE": 3, "CO": 6, "SIMD": 9, "KD": 18}),
    ("cf_mvu", {"PIPE": 2, "SIMD": 8, "KD": 16, "PCH": 3, "WSTYLE": 2}),
    ("cf_mvu", {"WRT": 1, "LA": 2, "LD": 18, "WSTYLE": 3}),
    ("cf_scalemac", {}), ("cf_scalemac", {"SIMD": 8, "N": 2, "PE": 2, "CO": 4, "CI": 16}),
    ("cf_scalemac", {"PIPE": 1}),
    ("cf_scalemac", {"WRT": 1, "LA": 2, "LD": 32, "WSTYLE": 3}),
    ("cf_scalemac", {"SIMD": 2, "N": 8, "CI": 16, "RELU": 0, "OB": 64, "FD": 1}),
    ("cf_scalemac", {"CI": 24, "N": 6, "SIMD": 6, "ISIGNED": 1, "FD": 8}),
    ("cf_resadd", {}), ("cf_resadd", {"C": 3, "SIMD": 1, "FD": 1, "SH": 0, "RELU": 0}),
    ("cf_resadd", {"WRT": 1, "LA": 1, "LD": 72}), ("cf_avgpool", {"WRT": 1, "LA": 1, "LD": 36}),
    ("cf_fork", {"W": 1}),
    ("cf_axis_in", {"W": 1, "BEATS": 1}), ("cf_axis_in", {"W": 16, "TW": 16}),
    ("cf_axis_out", {"W": 8, "BEATS": 1, "FD": 2}),
]

NEEDS = re.compile(r"\b(cf_\w+?_needs_\w+)\s+u_bad\b")


def _rule(module: str, rule: str) -> str:
    return f"{module}_needs_{rule}"


def _verilator(module: str, params: dict) -> subprocess.CompletedProcess:
    cmd = [str(tools.verilator()), "--lint-only", "-Wall", f"-I{RTL}", "--top-module", module]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=tools.verilator_env())


def _icarus(module: str, params: dict) -> subprocess.CompletedProcess:
    cmd = [str(tools.iverilog()), "-g2012", "-t", "null", "-y", str(RTL), "-s", module]
    cmd += [f"-P{module}.{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _yosys(module: str, params: dict) -> subprocess.CompletedProcess:
    """Yosys as generator/flows/synth.py reads the library (read_verilog, hierarchy -check), the
    parameters set by an instance as in the generated top (chparam cannot pass -1)."""
    over = ", ".join(f".{k}({v})" for k, v in params.items())
    wrap = f"module cfp_wrap;\n    {module} #({over}) u_dut ();\nendmodule\n"
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "cfp_wrap.v").write_text(wrap)
        files = " ".join(str(f) for f in sorted(RTL.glob("*.v")))
        script = f"read_verilog {files} {Path(d) / 'cfp_wrap.v'}; hierarchy -check -top cfp_wrap"
        return subprocess.run([str(tools.yosys()), "-q", "-p", script], capture_output=True,
                              text=True, timeout=120)


TOOLS = {"verilator": _verilator, "icarus": _icarus, "yosys": _yosys}


def _ids(cases):
    return [f"{c[0]}-" + ("-".join(f"{k}{v}" for k, v in c[1].items()) or "default")
            for c in cases]


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("module,params,rule", ILLEGAL, ids=_ids(ILLEGAL))
def test_illegal_parameters_fail_elaboration(tool, module, params, rule):
    r = TOOLS[tool](module, params)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{tool} elaborated {module} {params}:\n{out}"
    assert _rule(module, rule) in out, f"{tool}: {_rule(module, rule)} not named:\n{out}"
    # the case breaks this rule only (Yosys stops at the first missing module; units
    # below may refuse their share too, e.g. a zero-width output FIFO)
    own = set(re.findall(rf"\b{module}_needs_\w+?(?=\W)", out))
    assert own == {_rule(module, rule)}, f"{tool}: more rules than {rule} broken: {own}"


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("module,params", LEGAL, ids=_ids(LEGAL))
def test_legal_parameters_elaborate(tool, module, params):
    r = TOOLS[tool](module, params)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{tool} refused {module} {params}:\n{out}"
    assert "_needs_" not in out, out


def test_every_rule_and_unit_is_exercised():
    """Every rule in rtl/*.v has an illegal case, every unit a rule and a legal case, and
    every rule is named after its unit."""
    rules = {}
    for path in sorted(RTL.glob("*.v")):
        found = set(NEEDS.findall(path.read_text()))
        assert found, f"{path.name} has no elaboration-time parameter check"
        assert all(n.startswith(f"{path.stem}_needs_") for n in found), (path.name, found)
        rules[path.stem] = found
    tested = {_rule(m, r) for m, _, r in ILLEGAL}
    every = set().union(*rules.values())
    assert every - tested == set(), f"rules without an illegal case: {sorted(every - tested)}"
    assert tested - every == set(), f"cases naming no rule: {sorted(tested - every)}"
    assert {m for m, _ in LEGAL} == set(rules)


FIRST_PER_UNIT = list({m: (m, p, r) for m, p, r in reversed(ILLEGAL)}.values())


@pytest.mark.parametrize("module,params,rule", FIRST_PER_UNIT, ids=_ids(FIRST_PER_UNIT))
def test_refused_under_the_simulation_build_flags(module, params, rule):
    """generator/flows/rtlsim.py builds with -Wno-fatal -Wno-lint -Wno-style: a missing module is
    an error, not a warning, so the checks hold there too (a `$error` in a generate block
    is only a USERERROR warning to Verilator and would pass under -Wno-fatal)."""
    cmd = [str(tools.verilator()), "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           f"-I{RTL}", "--top-module", module]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(RTL / f"{module}.v")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=tools.verilator_env())
    assert r.returncode != 0 and _rule(module, rule) in r.stdout + r.stderr, r.stdout + r.stderr
