"""Checks that a folder written by `tandem init-random --out DIR` (Hugging Face layout) is a model that
transformers loads, and that Tandem computes the same logits on it.

It loads DIR with AutoModelForCausalLM in float32 (eager attention) and the tokenizer with
PreTrainedTokenizerFast(tokenizer_file=DIR/tokenizer.json), checks the tokenizer has exactly vocab_size entries
and round-trips text, prints the logits of a fixed list of token ids (first values, argmax, norm per position) and
writes them as rows x vocab f32 little-endian to WORKDIR/transformers.logits. With --jar it also runs
`tandem logits` on the same ids and prints the largest relative difference (the issue's bound is 1e-2).

usage: python3 check_random_hf.py DIR [--ids 128000,791,4062,...] [--jar server/target/tandem.jar] [--work WORKDIR]
example (a Llama-3-8B-shaped model, 16 GB in bf16):
  ./tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/random-8b
  python3 scripts/device/check_random_hf.py /tmp/random-8b --jar server/target/tandem.jar
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--ids", default=None, help="comma-separated token ids (default: BOS then 15 fixed ids)")
p.add_argument("--jar", default=None, help="tandem.jar: also run `tandem logits` and compare")
p.add_argument("--work", default=None, help="where the logits files go (default: DIR/..)")
a = p.parse_args()
work = a.work or os.path.dirname(os.path.abspath(a.dir))
os.makedirs(work, exist_ok=True)

with open(os.path.join(a.dir, "config.json")) as f:
    cfg = json.load(f)
vocab = cfg["vocab_size"]
ids = [int(x) for x in a.ids.split(",")] if a.ids else \
    [cfg["bos_token_id"]] + [int(x) % vocab for x in (5, 17, 100, 255, 256, 1000, 4242, 9999, 31337, 65535, 77777, 100000, 120000, 128255)]

tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.dir, "tokenizer.json"))
assert len(tok) == vocab, f"tokenizer has {len(tok)} entries, config.json's vocab_size is {vocab}"
text = "Hello, world! \u00e9\u4e2d"
enc = tok(text)["input_ids"]
assert enc[0] == cfg["bos_token_id"], f"encoding does not start with BOS {cfg['bos_token_id']}: {enc[:4]}"
assert tok.decode(enc, skip_special_tokens=True) == text, f"round trip gave {tok.decode(enc, skip_special_tokens=True)!r}"
print(f"tokenizer: {len(tok)} entries, {text!r} -> {enc}")

major = int(transformers.__version__.split(".")[0])
dtype_arg = {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}
model = AutoModelForCausalLM.from_pretrained(a.dir, attn_implementation="eager", **dtype_arg)
model.eval()
print(f"model: {type(model).__name__}, {sum(t.numel() for t in model.parameters()):,} parameters, "
      f"tied={model.config.tie_word_embeddings}, rope_theta={getattr(model.config, 'rope_theta', None)}")
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].float().numpy()
np.set_printoptions(precision=5, suppress=True, linewidth=160)
for i, t in enumerate(ids):
    print(f"pos {i:2d} id {t:6d}: argmax {int(logits[i].argmax()):6d} |logits| {np.linalg.norm(logits[i]):9.4f} first {logits[i][:6]}")
ref_file = os.path.join(work, "transformers.logits")
logits.astype("<f4").tofile(ref_file)
print(f"wrote {ref_file} ({len(ids)} x {vocab} f32); ids {','.join(map(str, ids))}")

if a.jar:
    out = os.path.join(work, "tandem.logits")
    r = subprocess.run(["java", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-jar", a.jar,
                        "logits", "--model", a.dir, "--ids", ",".join(map(str, ids)), "--out", out], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"tandem failed: {r.stderr.strip()}")
        sys.exit(1)
    got = np.fromfile(out, dtype="<f4").reshape(logits.shape)
    rel = np.abs(got - logits).max() / np.abs(logits).max()
    agree = (got.argmax(-1) == logits.argmax(-1)).mean()
    print(f"max |tandem - transformers| / max|logit| = {rel:.2e}, argmax agreement {agree:.3f} "
          f"(transformers {transformers.__version__}, torch {torch.__version__})")
    sys.exit(0 if rel < 1e-2 else 1)
