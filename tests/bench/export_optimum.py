"""Exports a GPT-Neo checkpoint with Hugging Face Optimum's ONNX exporter.

The result is the benchmark's `optimum-fp32` variant. It has the conventional KV-cache
layout that a project gets from the standard exporter: `input_ids`, `attention_mask`,
`position_ids`, and one key and one value input per layer, with logits for every new
position. `cargo xtask bench --optimum` runs this script. To run it by hand, from the
repository root:

    python3 tests/bench/export_optimum.py --checkpoint target/standin/tinystories-1m \
        --out target/bench/optimum

Needs `pip install optimum-onnx onnxruntime accelerate`, which brings torch and
transformers. The export reads the local checkpoint only: the Hugging Face hub is set to
offline mode before any of its libraries load. It writes model.onnx and the checkpoint's
config.json, which the benchmark reads for the layer and head counts.
"""

import argparse
import os
import sys
from pathlib import Path

# Opset of the banter bundles, so that the graphs differ in layout only.
OPSET = 17


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="Hugging Face GPT-Neo checkpoint folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write model.onnx and config.json into")
    args = parser.parse_args()

    if not (args.checkpoint / "config.json").is_file():
        sys.exit(f"export_optimum.py: {args.checkpoint} has no config.json; pass a Hugging Face checkpoint folder")

    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from optimum.exporters.onnx import main_export
    except ImportError as error:
        sys.exit(
            f"export_optimum.py: {error}; install the exporter with "
            "`pip install optimum-onnx onnxruntime accelerate`, or point BANTER_PYTHON at a Python that has it"
        )

    main_export(
        model_name_or_path=str(args.checkpoint),
        output=args.out,
        task="text-generation-with-past",
        opset=OPSET,
        device="cpu",
        local_files_only=True,
    )
    print(f"export_optimum.py: wrote {args.out / 'model.onnx'}")


if __name__ == "__main__":
    main()
