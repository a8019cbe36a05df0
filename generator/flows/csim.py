"""C simulation of a generated HLS project with g++ and the open ap_types headers.

    python -m generator.flows.csim OUT [--frames N] [--batch B] [--notrace] [--werror]
                                       [--corrupt-weight WORD:BIT]
    python -m generator.flows.csim --check-vitis

Compiles OUT/hls (top + test bench, -DCF_TRACE so that every node's output stream is
checked against OUT/vectors/<node>.hex), runs it on OUT/vectors, writes
OUT/csim/results.json, prints a one-line summary and exits 1 unless bit exact
(2 on usage/tool errors). The compiled binary is cached in OUT/csim/ by a hash of the
sources and flags.

A build with run-time weights (the manifest's `runtime_weights`, docs/WEIGHTS.md) also needs
OUT/weights/: the test bench loads weights.hex through the top's load mode before the
frames and again after the first batch, and fails unless every load answers weights.json's
checksum. `--corrupt-weight WORD:BIT` flips one bit of the first load (the corruption
check: its checksum and the first batch must mismatch, the run fails).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import vectorcheck
from ..core.errors import CfgenError

CXXFLAGS = ["-std=c++14", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas"]
# option ranges (python -m generator.flows.csim, run_csim)
MAX_FRAMES = 1_000_000
MAX_BATCH = 1_000_000


class CsimError(CfgenError):
    """Usage or tool error (exit 2)."""


# --------------------------------------------------------------------------- tools

def find_cxx() -> str:
    try:
        from ..core import tools
        return str(tools.cxx())
    except ImportError:  # pragma: no cover - tools.py absent
        pass
    except Exception as exc:  # ToolMissing
        raise CsimError(str(exc)) from None
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx:
        raise CsimError("g++ not found: install g++ (make setup)")
    return cxx


def find_ap_types() -> Path:
    """Directory with ap_int.h: generator.core.tools (the project's .venv), else the hls4ml package."""
    try:
        from ..core import tools
        try:
            return Path(tools.ap_types_include())
        except Exception:  # ToolMissing: fall back to an installed hls4ml
            pass
    except ImportError:  # pragma: no cover
        pass
    spec = importlib.util.find_spec("hls4ml")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            d = Path(loc) / "templates" / "vivado" / "ap_types"
            if (d / "ap_int.h").is_file():
                return d
    raise CsimError("ap_types headers (ap_int.h) not found: run `make setup` (or pip install hls4ml --no-deps)")


def compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out else cxx
    except (OSError, subprocess.SubprocessError):
        return cxx


# --------------------------------------------------------------------------- build

def _hash_tree(root: Path, paths, extra: str) -> str:
    """Hash of file contents and their paths relative to root (not where root lives)."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(str(Path(p).relative_to(root)).encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:20]


def build(hls_dir: Path, work: Path, trace: bool = True, werror: bool = False, quiet: bool = False) -> dict:
    """Compile the project's top and test bench into work/tb (cached). Returns build info."""
    manifest = json.loads((hls_dir / "manifest.json").read_text())
    cxx = find_cxx()
    ap = find_ap_types()
    flags = list(CXXFLAGS) + (["-DCF_TRACE"] if trace else []) + (["-Werror"] if werror else [])
    incs = [f"-I{hls_dir / d}" for d in manifest.get("sim_include_dirs", ["sim"])]
    incs += [f"-I{hls_dir / d}" for d in manifest.get("include_dirs", ["include", "src"])]
    incs += ["-isystem", str(ap)]
    sources = [hls_dir / s for s in manifest["sources"]] + [hls_dir / s for s in manifest["testbench"]]
    deps = sources + sorted((hls_dir / "src").rglob("*.h")) + sorted((hls_dir / "include").glob("*.h")) \
        + sorted((hls_dir / "sim").glob("*.h"))
    key = _hash_tree(hls_dir, deps, " ".join([cxx, str(ap)] + flags))
    work.mkdir(parents=True, exist_ok=True)
    exe = work / "tb"
    stamp = work / "tb.hash"
    info = {"compiler": compiler_version(cxx), "cxx": cxx, "cxxflags": " ".join(flags), "ap_types": str(ap),
            "compile_seconds": 0.0, "cached": False, "warnings": 0}
    # Optional cache shared between build folders ($CFGEN_CSIM_CACHE, e.g. for tests).
    shared = Path(os.environ["CFGEN_CSIM_CACHE"]) / key if os.environ.get("CFGEN_CSIM_CACHE") else None
    if shared is not None and (shared / "tb").exists() and not (exe.exists() and stamp.exists()
                                                                and stamp.read_text().split()[0] == key):
        shutil.copy2(shared / "tb", exe)
        shutil.copy2(shared / "tb.hash", stamp)
    if exe.exists() and stamp.exists() and stamp.read_text().split()[0] == key:
        info["cached"] = True
        info["warnings"] = int(stamp.read_text().split()[1]) if len(stamp.read_text().split()) > 1 else 0
        return info
    if not quiet:
        print(f"csim: compiling {hls_dir.name}/ ({len(sources)} files) with {info['compiler']} ...", flush=True)
    t0 = time.monotonic()

    def compile_one(src: Path):
        obj = work / (src.stem + ".o")
        cmd = [cxx, *flags, *incs, "-c", str(src), "-o", str(obj)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        return src, obj, r

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(sources), os.cpu_count() or 1))) as ex:
        results = list(ex.map(compile_one, sources))
    log = []
    for src, _, r in results:
        if r.stderr.strip():
            log.append(f"== {src.name}\n{r.stderr}")
    (work / "compile.log").write_text("\n".join(log))
    failed = [(s, r) for s, _, r in results if r.returncode != 0]
    if failed:
        src, r = failed[0]
        raise CsimError(f"compiling {src.name} failed (full log: {work / 'compile.log'}):\n"
                        + "\n".join(r.stderr.splitlines()[:40]))
    warnings = sum(r.stderr.count("warning:") for _, _, r in results)
    r = subprocess.run([cxx, *[str(o) for _, o, _ in results], "-o", str(exe)], capture_output=True, text=True)
    if r.returncode != 0:
        raise CsimError(f"linking the C simulation failed:\n{r.stderr[:4000]}")
    info["compile_seconds"] = round(time.monotonic() - t0, 2)
    info["warnings"] = warnings
    stamp.write_text(f"{key} {warnings}\n")
    if shared is not None:
        shared.mkdir(parents=True, exist_ok=True)
        shutil.copy2(stamp, shared / "tb.hash")
        shutil.copy2(exe, shared / f"tb.{os.getpid()}.tmp")
        os.replace(shared / f"tb.{os.getpid()}.tmp", shared / "tb")
    if warnings and not quiet:
        print(f"csim: {warnings} compiler warning(s), see {work / 'compile.log'}", flush=True)
    return info


# --------------------------------------------------------------------------- run

def count_frames(vectors: Path, beats_per_frame: int) -> int:
    with open(vectors / "input.hex") as f:
        lines = sum(1 for line in f if line.strip())
    return lines // beats_per_frame


def vector_streams(manifest: dict, trace: bool = True) -> list[tuple[str, int, int]]:
    """(name, bits, beats per frame) of every vector file the C simulation reads."""
    try:
        nodes = manifest["nodes"]
        streams = [("input", int(manifest["input"]["bits"]), int(manifest["input"]["beats_per_frame"]))]
        picked = nodes if trace else nodes[-1:]
        streams += [(str(nd["name"]), int(nd["out_bits"]), int(nd["out_beats_per_frame"])) for nd in picked]
    except (KeyError, TypeError, ValueError, IndexError):
        raise CsimError("hls/manifest.json lacks the stream widths and beats: re-run the build") from None
    return streams


def check_inputs(out_dir, frames: int | None = None, batch: int | None = None, trace: bool = True):
    """Everything the run reads, checked before anything is compiled or written:
    returns (manifest, frames available in vectors/)."""
    out_dir = Path(out_dir)
    hls_dir = out_dir / "hls"
    if frames is not None:
        vectorcheck.check_int("--frames", frames, 1, MAX_FRAMES)
    if batch is not None:
        vectorcheck.check_int("--batch", batch, 1, MAX_BATCH)
    if not (hls_dir / "manifest.json").is_file():
        raise CsimError(f"{hls_dir}/manifest.json not found: render the HLS project first "
                        f"(python -m generator build ...)")
    manifest = vectorcheck.load_json(hls_dir / "manifest.json", "the HLS project's manifest")
    available = vectorcheck.check_vectors(out_dir / "vectors", vector_streams(manifest, trace), frames,
                                          "a C simulation")
    check_weights(out_dir, manifest)
    return manifest, available


def check_weights(out_dir, manifest: dict) -> None:
    """A run-time weights build: weights/weights.hex and weights.json are there and hold as
    many words as the build loads."""
    if not manifest.get("runtime_weights"):
        return
    wdir = Path(out_dir) / "weights"
    want = int(manifest.get("weights", {}).get("words", -1))
    for name in ("weights.hex", "weights.json"):
        if not (wdir / name).is_file():
            raise CsimError(f"{wdir / name} not found: a build with run-time weights is simulated with its "
                            f"weight stream (python -m generator build --runtime-weights writes weights/)")
    with open(wdir / "weights.hex") as f:
        n = sum(1 for line in f if line.strip())
    if n != want:
        raise CsimError(f"{wdir / 'weights.hex'} holds {n} words, the build loads {want}: "
                        "the weights of another build")
    man = vectorcheck.load_json(wdir / "weights.json", "the weight manifest")
    if not (isinstance(man, dict) and isinstance(man.get("checksum"), list) and len(man["checksum"]) == 2):
        raise CsimError(f"{wdir / 'weights.json'} has no checksum [s1, s2]")


def parse_corrupt(text: str | None, manifest: dict) -> str | None:
    """--corrupt-weight WORD:BIT -> the test bench's CF_WEIGHTS_CORRUPT, checked."""
    if text is None:
        return None
    if not manifest.get("runtime_weights"):
        raise CsimError("--corrupt-weight needs a build with run-time weights")
    words = int(manifest.get("weights", {}).get("words", 0))
    try:
        w, b = (int(x, 10) for x in str(text).split(":"))
    except ValueError:
        raise CsimError(f"--corrupt-weight {text!r:.40}: want WORD:BIT") from None
    if not (0 <= w < words and 0 <= b < 32):
        raise CsimError(f"--corrupt-weight {text!r:.40}: WORD must be 0 .. {words - 1}, BIT 0 .. 31")
    return f"{w}:{b}"


def _tb_env(out_dir: Path, corrupt: str | None = None) -> dict:
    env = dict(os.environ)
    env.pop("CF_WEIGHTS_CORRUPT", None)
    env["CF_WEIGHTS_DIR"] = str(Path(out_dir) / "weights")
    if corrupt:
        env["CF_WEIGHTS_CORRUPT"] = corrupt
    return env


def run_csim(out_dir, frames: int | None = None, batch: int | None = None, trace: bool = True,
             werror: bool = False, quiet: bool = False, timeout: float | None = None,
             corrupt_weight: str | None = None) -> dict:
    """Build and run the C simulation of out_dir/hls on out_dir/vectors; returns the results
    dict (also written to out_dir/csim/results.json). Vector files and options are checked
    first (generator/flows/vectorcheck.py): asking for more frames than vectors/ holds, or a
    vector file that is not whole frames, is a CsimError, never a shorter run.
    corrupt_weight "WORD:BIT" (run-time weights only): flip that bit in the first load."""
    t_start = time.monotonic()
    out_dir = Path(out_dir)
    hls_dir = out_dir / "hls"
    vectors = out_dir / "vectors"
    manifest, available = check_inputs(out_dir, frames, batch, trace)
    corrupt = parse_corrupt(corrupt_weight, manifest)
    n = available if frames is None else frames
    if batch is None:  # reps per call: > 1 (exercises multi-frame runs), progress every ~5 %
        batch = min(n, 32, max(4, -(-n // 20)))
    batch = min(batch, n)
    work = out_dir / "csim"
    info = build(hls_dir, work, trace=trace, werror=werror, quiet=quiet)
    tb_json = work / "tb_results.json"
    if tb_json.exists():
        tb_json.unlink()
    cmd = [str(work / "tb"), str(vectors), str(n), str(batch), str(tb_json)] + ([] if trace else ["notrace"])
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_tb_env(out_dir, corrupt))
    tail = []
    try:
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-50:]
            if not quiet and (line.startswith("[csim] frames") or line.startswith("[csim] weights")):
                print(line.rstrip(), flush=True)
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise CsimError(f"C simulation exceeded {timeout} s") from None
    run_s = time.monotonic() - t0
    if not tb_json.exists():
        raise CsimError(f"the C simulation crashed (exit {rc}):\n" + "\n".join(tail[-20:]))
    tb = json.loads(tb_json.read_text())
    nodes = tb["nodes"]
    mismatches = {nd["name"]: nd["mismatches"] + nd["missing_beats"] * nd["channels"] + nd["extra_beats"]
                  * nd["channels"] + nd["bad_lines"] for nd in nodes} if trace else {}
    o = tb["output"]
    res = {
        "frames": tb["frames"],
        "bit_exact": bool(tb["bit_exact"]) and rc == 0,
        "mismatches": mismatches,
        "output_mismatches": o["mismatches"] + o["missing_beats"] + o["extra_beats"] + o["bad_lines"],
        "tlast_errors": tb["tlast_errors"],
        "pad_errors": tb["pad_errors"],
        "leftover_streams": tb["leftover_streams"],
        "input_left": tb["input_left"],
        "trace": tb["trace"],
        "first_mismatch": next(({"node": nd["name"], **nd["first_mismatch"]} for nd in nodes
                                if "first_mismatch" in nd), o.get("first_mismatch")),
        "values": {nd["name"]: nd["values"] for nd in nodes},
        "compiler": info["compiler"],
        "cxxflags": info["cxxflags"],
        "ap_types": info["ap_types"],
        "compiler_warnings": info["warnings"],
        "compile_seconds": info["compile_seconds"],
        "compile_cached": info["cached"],
        "run_seconds": round(run_s, 3),
        "seconds_per_frame": round(tb["run_seconds"] / max(1, tb["frames"]), 4),
        "seconds": round(time.monotonic() - t_start, 3),
        "top": manifest["top"],
        "batch": batch,
        "exit_code": rc,
        "nodes": nodes,
        "output": o,
    }
    if "weights" in tb:                 # run-time weights: every load's status vs weights.json
        res["weights"] = tb["weights"]
    (work / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def run_tlast(out_dir, trace: bool = True, werror: bool = False, quiet: bool = False,
              timeout: float | None = 600) -> dict:
    """Input TLAST resynchronisation check of the generated top in C simulation (the test
    bench's `tlast` mode, docs/CONTRACT.md): short, long and multi-frame packets between good
    frames in one call; returns its results (also out_dir/csim/tlast_results.json)."""
    out_dir = Path(out_dir)
    check_inputs(out_dir, None, None, trace=False)
    work = out_dir / "csim"
    build(out_dir / "hls", work, trace=trace, werror=werror, quiet=quiet)
    tb_json = work / "tlast_results.json"
    if tb_json.exists():
        tb_json.unlink()
    try:
        r = subprocess.run([str(work / "tb"), str(out_dir / "vectors"), "0", "1", str(tb_json), "tlast"],
                           capture_output=True, text=True, timeout=timeout, env=_tb_env(out_dir))
    except subprocess.TimeoutExpired:
        raise CsimError(f"the TLAST C simulation exceeded {timeout} s") from None
    if not tb_json.exists():
        tail = (r.stdout + r.stderr).strip().splitlines()[-20:]
        raise CsimError(f"the TLAST C simulation crashed (exit {r.returncode}):\n" + "\n".join(tail))
    res = json.loads(tb_json.read_text())
    res["log"] = r.stdout.strip().splitlines()
    res["exit_code"] = r.returncode
    res["passed"] = bool(res.get("passed")) and r.returncode == 0
    return res


def summary(res: dict) -> str:
    if res["bit_exact"]:
        w = res.get("weights")
        loads = f", run-time weights loaded {len(w['loads'])}x, checksum ok" if w else ""
        return (f"csim: BIT EXACT, {res['frames']} frames, {len(res['nodes'])} nodes checked{loads}, "
                f"{res['seconds']:.1f} s ({res['seconds_per_frame'] * 1000:.1f} ms/frame, compile "
                f"{'cached' if res['compile_cached'] else str(res['compile_seconds']) + ' s'})")
    bad = {k: v for k, v in res["mismatches"].items() if v}
    parts = [f"{k}: {v}" for k, v in bad.items()]
    if res["output_mismatches"]:
        parts.append(f"output: {res['output_mismatches']}")
    for key in ("tlast_errors", "pad_errors", "leftover_streams", "input_left"):
        if res[key]:
            parts.append(f"{key}: {res[key]}")
    w = res.get("weights")
    if w and not w.get("checksum_ok"):
        bad = [str(i + 1) for i, ld in enumerate(w.get("loads", [])) if not ld.get("ok")]
        parts.append(f"weight checksum mismatch (load {', '.join(bad)})" if bad else
                     "weight loader: a run call before the first load ran")
    first = res.get("first_mismatch")
    where = (f"; first at {first.get('node', 'output')} frame {first['frame']} pixel {first['pixel']} channel "
             f"{first['channel']} expected {first['expected']} got {first['got']}") if first else ""
    return f"csim: NOT BIT EXACT over {res['frames']} frames ({', '.join(parts) or 'exit ' + str(res['exit_code'])}){where}"


def check_vitis() -> int:
    ok = True
    for tool, what in (("vitis_hls", "make hls (Vitis HLS csynth/cosim/export)"),
                       ("vivado", "make bitstream (Vivado block design, .bit/.hwh)")):
        path = shutil.which(tool)
        if path:
            print(f"{tool}: {path}")
        else:
            ok = False
            print(f"{tool}: not found on PATH -- needed for {what}; install AMD/Xilinx Vitis and "
                  f"`source <install>/settings64.sh`")
    if not ok:
        print("C simulation needs neither: python -m generator.flows.csim OUT")
    return 0 if ok else 1


def main(argv=None) -> int:
    from ..core import options
    from ..core.entry import OneLineParser, run_main

    ap = OneLineParser(prog="python -m generator.flows.csim",
                       description="Bit-exact C simulation of a generated HLS project (g++ + ap_types).")
    ap.add_argument("out", nargs="?", help="build folder (holding hls/ and vectors/)")
    ap.add_argument("--frames", type=options.int_range(1, MAX_FRAMES), default=None,
                    help="frames to simulate (default: all vectors; more than vectors/ holds is an error)")
    ap.add_argument("--batch", type=options.int_range(1, MAX_BATCH), default=None,
                    help="frames per call of the top (reps)")
    ap.add_argument("--notrace", action="store_true", help="check only the accelerator output, not every node")
    ap.add_argument("--werror", action="store_true", help="fail on compiler warnings")
    ap.add_argument("--check-vitis", action="store_true", help="report whether vitis_hls and vivado are on PATH")
    ap.add_argument("--tlast", action="store_true",
                    help="instead: check the input TLAST resynchronisation (short / long packets)")
    ap.add_argument("--corrupt-weight", metavar="WORD:BIT", default=None,
                    help="run-time weights: flip bit BIT of stream word WORD in the first load (the "
                         "checksum and the first batch must mismatch: the run fails)")
    args = ap.parse_args(argv)
    if args.check_vitis:
        return check_vitis()
    if not args.out:
        ap.error("OUT is required")
    return run_main(lambda: _main(args))


def _main(args) -> int:
    if args.tlast:
        res = run_tlast(args.out, trace=not args.notrace, werror=args.werror)
        print(res["log"][-1] if res["log"] else f"csim: TLAST check exit {res['exit_code']}")
        return 0 if res["passed"] else 1
    res = run_csim(args.out, frames=args.frames, batch=args.batch, trace=not args.notrace, werror=args.werror,
                   corrupt_weight=args.corrupt_weight)
    print(summary(res))
    return 0 if res["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
