"""`export MODEL.pt -o MODEL.onnx`: a cfgen model as QONNX, its CF n in the metadata."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "export", help="write a cfgen model as QONNX (for FINN and qonnx tools)",
        description="Write the checkpoint's float model as a QONNX graph (batch 1): BipolarQuant "
                    "on binary weights (CF-n group scales) and activations, plain Conv / Gemm / "
                    "BatchNormalization / pools. The spec and the CF n of every layer go into "
                    "the model's metadata, so `import` of the file gives back the same tensors.")
    p.add_argument("checkpoint", help="cfgen checkpoint (.pt)")
    p.add_argument("-o", "--output", required=True, help="QONNX file to write (.onnx)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..model.qonnx_io import check_onnx_output, export_onnx, load_model_file

    check_onnx_output(args.output)
    ckpt = load_model_file(args.checkpoint)
    export_onnx(ckpt, args.output)
    cf = sorted({l["cf"] for l in ckpt.layers() if l["precision"] != "float"})
    print(f"wrote {args.output}: {ckpt.spec['name']} as QONNX (CF-{'/'.join(map(str, cf)) or '-'}"
          f", input: uint8 pixels / 255, batch 1)")
    return 0
