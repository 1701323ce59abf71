"""HF accelerate's offloading, the issue's second peer of `tandem bench offload`: transformers loads the model with
device_map="auto" and max_memory (the GPU capped like Tandem's --gpu-mem, the rest in CPU memory), then generates
--gen-len tokens greedily for --batch prompts of --prompt-len random ids. Prints prefill and decode time and the
throughput in FlexGen's terms (generated tokens over the whole run). The model folder is one `tandem init-random`
wrote (random weights in the Hugging Face layout), so no download is needed.

usage: python3 hf_accelerate.py --model DIR [--gpu-mem 16GiB] [--cpu-mem 200GiB] [--batch 8] [--prompt-len 512] [--gen-len 32]
"""
import argparse
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--gpu-mem", default="16GiB")
ap.add_argument("--cpu-mem", default="200GiB")
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--prompt-len", type=int, default=512)
ap.add_argument("--gen-len", type=int, default=32)
a = ap.parse_args()

t0 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float16, device_map="auto",
                                             max_memory={0: a.gpu_mem, "cpu": a.cpu_mem}).eval()
placed = {}
for name, dev in model.hf_device_map.items():
    placed[str(dev)] = placed.get(str(dev), 0) + 1
print(f"transformers {transformers.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}; "
      f"loaded in {time.perf_counter() - t0:.1f} s; modules by device: {placed}", flush=True)

g = torch.Generator().manual_seed(7)
ids = torch.randint(4, model.config.vocab_size, (a.batch, a.prompt_len), generator=g).cuda()
with torch.inference_mode():
    # Prefill alone (one token), then the whole generation: decode time is the difference.
    torch.cuda.synchronize(); t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False)
    torch.cuda.synchronize(); prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=a.gen_len, min_new_tokens=a.gen_len, do_sample=False)
    torch.cuda.synchronize(); total = time.perf_counter() - t0
generated = (out.shape[1] - a.prompt_len) * a.batch
print(f"HF accelerate: batch {a.batch}, prompt {a.prompt_len}, gen {a.gen_len}, GPU cap {a.gpu_mem}: prefill {prefill:.2f} s, "
      f"decode {total - prefill:.2f} s, total {total:.2f} s, {generated / total:.3f} tokens/s "
      f"(peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB)", flush=True)
