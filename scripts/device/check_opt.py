"""Checks Tandem's OPT against Hugging Face transformers and writes the goldens of OptGoldenTest.

Run where PyTorch + transformers are (the GPU machine; transformers runs on the CPU in float32, eager attention):
1. `tandem init-random --config opt-tiny --dtype f32 --seed 7 --std 0.2` writes the model OptGoldenTest uses
   (the bytes depend only on seed and std); transformers loads it, computes greedy ids (24 tokens, EOS not special)
   for fixed prompts and the top-5 logits of every position of prompt + greedy ids (teacher-forced), and writes
   them as JSON (--out: core/src/test/resources/dev/tandem/core/model/opt-tiny-hf-golden.json).
2. `tandem logits` on the same folder and sequences: the largest logit error against transformers.
3. An OPT written by transformers itself (save_pretrained, larger random weights, 3 layers, head_dim 40): Tandem
   loads its files (tied lm_head absent from the safetensors) and `tandem logits` is compared the same way.

usage: python3 check_opt.py --tandem "java ... dev.tandem.server.cli.Main" --work DIR [--out golden.json]
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import torch
import transformers

ap = argparse.ArgumentParser()
ap.add_argument("--tandem", required=True, help="command line that runs the tandem CLI")
ap.add_argument("--work", required=True)
ap.add_argument("--out", default=None)
a = ap.parse_args()
tandem = shlex.split(a.tandem)
os.makedirs(a.work, exist_ok=True)
SEED, STD, NEW = 7, 0.2, 24
PROMPTS = [[0, 5, 77, 300, 12], [0, 400, 511, 3, 9, 100, 200, 250, 17, 42, 8, 19, 64, 128, 256], [0]]


def run(*args):
    r = subprocess.run(tandem + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"tandem {' '.join(args)} failed: {r.stderr.strip()}")


def load(d):
    return transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()


def tandem_logits(d, ids, vocab):
    out = os.path.join(a.work, "tandem.logits")
    run("logits", "--model", d, "--ids", ",".join(map(str, ids)), "--out", out)
    return np.fromfile(out, dtype="<f4").reshape(len(ids), vocab)


def rel(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


worst = 0.0
tiny = os.path.join(a.work, "opt-tiny")
run("init-random", "--config", "opt-tiny", "--dtype", "f32", "--seed", str(SEED), "--std", str(STD), "--out", tiny)
model = load(tiny)
cfg = model.config
golden = {"model": "opt-tiny", "seed": SEED, "std": STD, "new_tokens": NEW, "transformers": transformers.__version__,
          "torch": torch.__version__, "prompts": []}
with torch.no_grad():
    for prompt in PROMPTS:
        ids, gaps = list(prompt), []
        for _ in range(NEW):
            row = model(torch.tensor([ids])).logits[0, -1]
            top2 = torch.topk(row, 2).values
            gaps.append(float(top2[0] - top2[1]))
            ids.append(int(row.argmax()))
        logits = model(torch.tensor([ids])).logits[0].numpy()
        top = np.argsort(-logits, axis=-1, kind="stable")[:, :5]
        golden["prompts"].append({"ids": prompt, "greedy": ids[len(prompt):],
                                  "top5": [{"pos": p, "ids": top[p].tolist(), "logits": logits[p, top[p]].tolist()} for p in range(len(ids))]})
        err = rel(tandem_logits(tiny, ids, cfg.vocab_size), logits)
        worst = max(worst, err)
        print(f"opt-tiny prompt of {len(prompt)}: greedy {ids[len(prompt):]}, smallest top-2 gap {min(gaps):.2e} "
              f"(scale {np.abs(logits).max():.2f}); tandem logits error {err:.2e} of the scale")

hf_dir = os.path.join(a.work, "opt-hf-written")
torch.manual_seed(0)
hf = transformers.OPTForCausalLM(transformers.OPTConfig(vocab_size=512, hidden_size=120, num_attention_heads=3, ffn_dim=344,
                                                        num_hidden_layers=3, max_position_embeddings=96, bos_token_id=0,
                                                        eos_token_id=2, pad_token_id=1, word_embed_proj_dim=120))
with torch.no_grad():  # larger than the default init, so that mistakes show in the logits
    for name, p in hf.named_parameters():
        p.normal_(1.0, 0.1) if "layer_norm.weight" in name else p.normal_(0, 0.3 if name.endswith(".bias") else 0.08)
hf.save_pretrained(hf_dir, safe_serialization=True)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(os.path.join(tiny, f), hf_dir)
ref_model = load(hf_dir)
ids = [0] + list(np.random.RandomState(0).randint(3, 512, size=60))
with torch.no_grad():
    ref = ref_model(torch.tensor([ids])).logits[0].numpy()
got = tandem_logits(hf_dir, ids, 512)
err = rel(got, ref)
worst = max(worst, err)
print(f"transformers-written OPT (head_dim 40, 3 layers): tandem logits error {err:.2e} of the scale, argmax agreement "
      f"{(got.argmax(-1) == ref.argmax(-1)).mean():.3f}")

if a.out:
    with open(a.out, "w") as f:
        json.dump(golden, f, indent=1)
    print(f"goldens written to {a.out}")
print(f"transformers {transformers.__version__}, torch {torch.__version__}; worst {worst:.2e}")
sys.exit(0 if worst < 1e-4 else 1)
