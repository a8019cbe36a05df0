"""`import MODEL.onnx -o MODEL.pt`: a QONNX graph (Brevitas, FINN) as a cfgen checkpoint.

The subcommand is `import`; the module is `import_` (a keyword cannot name a module).
"""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "import", help="read a QONNX model (Brevitas / FINN) into a cfgen checkpoint",
        description="Read a QONNX graph of a binarized CNN (after qonnx-cleanup) and write a "
                    "cfgen checkpoint: spec, weights, precision and CF n of every layer. CF n "
                    "comes from the file's metadata (cfgen's export writes it) or is inferred "
                    "from runs of equal per-channel scales; what was inferred is printed. "
                    "docs/BREVITAS.md lists the supported subset.")
    p.add_argument("model", help="QONNX file (.onnx)")
    p.add_argument("-o", "--output", required=True, help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..model.checkpoint import check_output_path, save_checkpoint
    from ..model.qonnx_io import import_onnx

    check_output_path(args.output)
    result = import_onnx(args.model)
    ckpt = result.checkpoint
    model = ckpt.model()
    save_checkpoint(args.output, model, meta=ckpt.meta)
    for note in result.notes:
        print(f"  {note}")
    binary = [l for l in ckpt.layers() if l["precision"] != "float"]
    cfs = "/".join(str(n) for n in sorted({l["cf"] for l in binary})) or "-"
    print(f"wrote {args.output}: {ckpt.spec['name']}, {len(ckpt.layers())} conv/linear layers "
          f"({len(binary)} binary, CF-{cfs}); accuracy not measured: run eval")
    return 0
