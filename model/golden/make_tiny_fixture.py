"""Writes a tiny GPT-Neo checkpoint as pytorch_model.bin and model.safetensors, with golden logits.

Usage (from the repository root):

    python3 model/golden/make_tiny_fixture.py

Needs torch and transformers. The checkpoint has a vocabulary of 96, hidden size 8, and one
global and one local layer with a 4-position window. It is small enough to commit, so the
Rust tests can read a real `torch.save` file, and its 12-token sequence crosses the window.
The same weights are saved in both formats; `golden.json` holds transformers' logits for a
prefill and single-token steps through its KV cache.
"""

import inspect
import json
from pathlib import Path

import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-gpt-neo"
IDS = [5, 17, 90, 3, 44, 61, 12, 8, 95, 30, 71, 2]
PREFILL = 6


def main() -> None:
    torch.manual_seed(1234)
    config = GPTNeoConfig(
        vocab_size=96,
        hidden_size=8,
        num_layers=2,
        num_heads=2,
        attention_types=[[["global", "local"], 1]],
        window_size=4,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPTNeoForCausalLM(config).eval()
    # Layer norms start as the identity; perturb them so that wrong parameters change the logits.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "ln" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))

    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT)
    # transformers 5 writes only safetensors; pytorch_model.bin is torch.save of the state
    # dict, as older transformers versions wrote it.
    torch.save(model.state_dict(), OUT / "pytorch_model.bin")
    for extra in ["generation_config.json"]:
        (OUT / extra).unlink(missing_ok=True)

    cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    steps = []
    with torch.no_grad():
        output = model(torch.tensor([IDS[:PREFILL]]), use_cache=True)
        steps.append([round(float(value), 7) for value in output.logits[0, -1]])
        for token in IDS[PREFILL:]:
            output = model(torch.tensor([[token]]), use_cache=True, **{cache_name: output[cache_name]})
            steps.append([round(float(value), 7) for value in output.logits[0, -1]])

    golden = {"ids": IDS, "prefill": PREFILL, "logits": steps}
    (OUT / "golden.json").write_text(json.dumps(golden) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
