"""HF transformers' assisted generation (assistant_model) against plain generate on the same pair and prompts as
`tandem bench spec` (issue 8): greedy, 64 new tokens per golden prompt, float32 (as the task statement measured).
usage: hf_assisted.py --target DIR --draft DIR --golden golden.json [--dtype float32|bfloat16] [-r 3]"""
import argparse, json, time
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--target", required=True)
ap.add_argument("--draft", required=True)
ap.add_argument("--golden", required=True)
ap.add_argument("--dtype", default="float32")
ap.add_argument("-r", type=int, default=3)
ap.add_argument("-n", type=int, default=64)
a = ap.parse_args()
dt = getattr(torch, a.dtype)
target = AutoModelForCausalLM.from_pretrained(a.target, dtype=dt).cuda().eval()
draft = AutoModelForCausalLM.from_pretrained(a.draft, dtype=dt).cuda().eval()
prompts = [p["prompt_ids"] for p in json.load(open(a.golden))["prompts"]]

def run(assistant):
    best = float("inf")
    for _ in range(a.r + 1):
        tokens, t0 = 0, time.perf_counter()
        for ids in prompts:
            x = torch.tensor([ids], device="cuda")
            kw = dict(max_new_tokens=a.n, min_new_tokens=a.n, do_sample=False)
            if assistant is not None:
                kw["assistant_model"] = assistant
            out = target.generate(x, **kw)
            tokens += out.shape[1] - len(ids)
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) * 1000 / tokens)
    return best

with torch.inference_mode():
    plain = run(None)
    assisted = run(draft)
print(f"HF transformers {a.dtype}: plain {plain:.2f} ms/token, assisted {assisted:.2f} ms/token ({plain / assisted:.2f}x)")
