"""Checks Tandem's forward pass against Hugging Face transformers on architectures without a real test model.

Run on a machine with PyTorch + transformers (the GPU machine): for Llama (Llama 3 RoPE scaling, tied
embeddings, head_dim 40), Mistral and Qwen2 (QKV bias), and an F16 checkpoint, it writes a small random model,
runs `tandem logits` on the same files and prints the largest relative logit error per model.

usage: python3 check_architectures.py TANDEM_JAR TOKENIZER_DIR WORKDIR
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import transformers

jar, tok_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
common = dict(vocab_size=8192, hidden_size=320, intermediate_size=864, num_hidden_layers=3,
              num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
              bos_token_id=0, eos_token_id=1)
cases = {
    "llama3-scaled-tied": (transformers.LlamaConfig, dict(common, head_dim=40, tie_word_embeddings=True, rope_theta=500000.0,
                            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                              original_max_position_embeddings=64)), torch.float32),
    "mistral": (transformers.MistralConfig, dict(common, sliding_window=4096, tie_word_embeddings=False), torch.float32),
    "qwen2-bias": (transformers.Qwen2Config, dict(common, tie_word_embeddings=False, rope_theta=1000000.0), torch.float32),
    "llama-f16": (transformers.LlamaConfig, dict(common, tie_word_embeddings=False), torch.float16),
}
ids = [0] + list(np.random.RandomState(0).randint(2, 8192, size=40))
worst_all = 0.0
for name, (cfg_cls, kw, dtype) in cases.items():
    torch.manual_seed(0)
    cfg = cfg_cls(**kw)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger than the default init, so that mistakes show in the logits
        for pname, p in model.named_parameters():
            if pname.endswith(".bias"):
                p.normal_(0, 0.5)
            elif "norm" in pname:
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0, 0.05)
    d = os.path.join(work, name)
    model.to(dtype).save_pretrained(d, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), d)
    ref_model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        ref = ref_model(torch.tensor([ids])).logits[0].float().numpy()
    out = os.path.join(work, name + ".logits")
    r = subprocess.run(["java", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-jar", jar,
                        "logits", "--model", d, "--ids", ",".join(map(str, ids)), "--out", out], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{name}: tandem failed: {r.stderr.strip()}")
        worst_all = float("inf")
        continue
    got = np.fromfile(out, dtype="<f4").reshape(ref.shape)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    same_argmax = (got.argmax(-1) == ref.argmax(-1)).mean()
    worst_all = max(worst_all, rel)
    print(f"{name}: max |tandem - transformers| / max|logit| = {rel:.2e}, argmax agreement {same_argmax:.3f}, "
          f"config {json.dumps({k: v for k, v in kw.items() if k in ('head_dim', 'tie_word_embeddings', 'rope_scaling', 'sliding_window')})}")
print(f"transformers {transformers.__version__}, torch {torch.__version__}; worst {worst_all:.2e}")
sys.exit(0 if worst_all < 1e-4 else 1)
