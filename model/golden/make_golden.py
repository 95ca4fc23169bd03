"""Writes the golden logits of a stand-in checkpoint, computed by Hugging Face transformers.

Usage (from the repository root):

    cargo run -p banter-model -- standin --out target/standin-1m
    python3 model/golden/make_golden.py --checkpoint target/standin-1m
    cargo run -p banter-model -- standin --size 8m --out target/standin-8m
    python3 model/golden/make_golden.py --checkpoint target/standin-8m \
        --out model/golden/tinystories-8m-standin.json

Needs torch and transformers (`pip install torch transformers`); the Rust tests only read
the JSON this writes. It records two things:

- `cases`: whole sequences run without a cache. Per case, the input ids, the
  last-position logits at every SAMPLE_STRIDE-th vocabulary id, and the top-5 ids with
  their logits.
- `decode`: a prefill of DECODE_PREFILL ids followed by DECODE_STEPS single-token steps
  through transformers' KV cache, crossing position 256 so that the local layers' window
  drops keys. The ids fed are fixed (not sampled), so a runtime that disagrees on one
  step cannot change the later inputs. Per step, the logits at every DECODE_STRIDE-th id
  and the top-5.
"""

import argparse
import inspect
import json
import platform
import re
from pathlib import Path

import torch
import transformers
from transformers import GPTNeoForCausalLM

# Logits are recorded at ids 0, SAMPLE_STRIDE, 2 * SAMPLE_STRIDE, ... to keep the file small.
SAMPLE_STRIDE = 97
TOP_K = 5

# Decoding check: positions 0..199 as a prefill, then 200..299 one token at a time.
DECODE_PREFILL = 200
DECODE_STEPS = 100
DECODE_STRIDE = 1009

# GPT-2 ids of the show's prompt `A man was asked "Hello". He smiled and said, "`.
PROMPT_IDS = [32, 582, 373, 1965, 366, 15496, 1911, 679, 13541, 290, 531, 11, 366]


def long_sequence(length: int) -> list[int]:
    """Returns a deterministic id sequence (a linear congruential walk over the vocabulary)."""
    ids = []
    state = 12345
    for _ in range(length):
        state = (state * 1103515245 + 12345) % (1 << 31)
        ids.append(state % 50257)
    return ids


def compact_number_lists(text: str) -> str:
    """Puts each JSON list of numbers on one line, so the file stays short and diffable."""
    numbers = re.compile(r"\[\s*(-?[0-9][-+0-9.e,\s]*?)\s*\]")
    return numbers.sub(lambda match: "[" + ", ".join(item.strip() for item in match.group(1).split(",")) + "]", text)


def cases() -> dict[str, list[int]]:
    return {
        "prompt": PROMPT_IDS,
        "single_token": [50256],
        # 300 positions: the local layers' 256-position window cuts off the first 44 keys.
        "past_local_window": long_sequence(300),
    }


def summarize(logits: torch.Tensor, stride: int) -> dict:
    """Returns the logits at every stride-th id and the top-5 ids and logits of one position."""
    top = torch.topk(logits, TOP_K)
    return {
        "sampled_logits": [round(float(value), 7) for value in logits[::stride]],
        "top_ids": [int(index) for index in top.indices],
        "top_logits": [round(float(value), 7) for value in top.values],
    }


def decode(model: GPTNeoForCausalLM) -> dict:
    """Runs a prefill and single-token steps through the KV cache."""
    # transformers 5.x renamed the cache argument and output `past_key_values` to `cache`.
    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    ids = long_sequence(DECODE_PREFILL + DECODE_STEPS)
    output = model(torch.tensor([ids[:DECODE_PREFILL]], dtype=torch.long), use_cache=True)
    steps = [summarize(output.logits[0, -1], DECODE_STRIDE)]
    for position in range(DECODE_PREFILL, DECODE_PREFILL + DECODE_STEPS):
        step_input = torch.tensor([[ids[position]]], dtype=torch.long)
        output = model(step_input, use_cache=True, **{cache_name: output[cache_name]})
        steps.append(summarize(output.logits[0, -1], DECODE_STRIDE))
    return {
        "ids": ids,
        "prefill": DECODE_PREFILL,
        "sample_stride": DECODE_STRIDE,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="stand-in checkpoint folder")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("tinystories-1m-standin.json"),
        help="golden JSON to write",
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    model = GPTNeoForCausalLM.from_pretrained(args.checkpoint, torch_dtype=torch.float32)
    model.eval()

    results = {}
    with torch.no_grad():
        for name, ids in cases().items():
            logits = model(torch.tensor([ids], dtype=torch.long)).logits[0, -1]
            results[name] = {"ids": ids, **summarize(logits, SAMPLE_STRIDE)}
        decoding = decode(model)

    standin = json.loads((args.checkpoint / "standin.json").read_text())
    golden = {
        "checkpoint": standin["name"],
        "seed": standin["seed"],
        "sample_stride": SAMPLE_STRIDE,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "cases": results,
        "decode": decoding,
    }
    args.out.write_text(compact_number_lists(json.dumps(golden, indent=1)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
