"""HF transformers (sdpa, bf16) on the same model and the same steps as `tandem bench steps`: decode steps of B
sequences after `context` cached tokens, and single prefills of L tokens. Prints the same table."""
import argparse, time, statistics
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--decode-batches", default="1,64")
ap.add_argument("--prefill", default="2048")
ap.add_argument("--context", type=int, default=128)
ap.add_argument("--steps", type=int, default=32)
ap.add_argument("-r", type=int, default=3)
a = ap.parse_args()
import transformers
model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
V = model.config.vocab_size
print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")
print("| test | ms/step | tokens/s |")
print("|---|---|---|")
g = torch.Generator(device="cuda").manual_seed(7)
with torch.inference_mode():
    for b in [int(x) for x in a.decode_batches.split(",") if x]:
        ids = torch.randint(0, V, (b, a.context), device="cuda", generator=g)
        out = model(ids, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
        warm = 3
        for i in range(warm + a.steps):
            if i == warm:
                torch.cuda.synchronize(); t0 = time.perf_counter()
            out = model(nxt[:, None], past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1)
            nxt.cpu()  # the token reaches the host, as in serving
        ms = (time.perf_counter() - t0) * 1000 / a.steps
        print(f"| decode batch {b}, context {a.context} | {ms:.3f} | {b * 1000 / ms:.1f} |", flush=True)
        del past, out
        torch.cuda.empty_cache()
    for L in [int(x) for x in a.prefill.split(",") if x]:
        ts = []
        for i in range(a.r + 1):
            ids = torch.randint(0, V, (1, L), device="cuda", generator=g)
            torch.cuda.synchronize(); t0 = time.perf_counter()
            out = model(ids, use_cache=True, logits_to_keep=1)
            out.logits[:, -1].argmax(-1).cpu()
            if i > 0:
                ts.append((time.perf_counter() - t0) * 1000)
            del out
        ms = statistics.median(ts)
        print(f"| prefill {L} | {ms:.2f} | {L * 1000 / ms:.0f} |", flush=True)
        torch.cuda.empty_cache()
