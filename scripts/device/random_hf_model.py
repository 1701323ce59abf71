"""Writes a seeded random-weight Llama model in Hugging Face layout with torch on the GPU (fallback for
`tandem init-random` in device runs). Weights normal(0, 0.02) in bf16, norms 1.
usage: random_hf_model.py --config llama3-8b --out DIR --tokenizer tokenizer.json [--seed 1]"""
import argparse, json, os, shutil, time
import torch
from safetensors.torch import save_file

PRESETS = {
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
    "llama3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
}

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="llama3-8b")
ap.add_argument("--out", required=True)
ap.add_argument("--tokenizer", required=True)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
p = PRESETS[a.config]
t0 = time.time()
os.makedirs(a.out, exist_ok=True)
g = torch.Generator(device="cuda").manual_seed(a.seed)
H, F, L, V = p["hidden_size"], p["intermediate_size"], p["num_hidden_layers"], p["vocab_size"]
hd = H // p["num_attention_heads"]
kv = p["num_key_value_heads"] * hd

def rnd(*shape):
    return (torch.randn(*shape, generator=g, device="cuda", dtype=torch.float32) * 0.02).to(torch.bfloat16).cpu()

shards, cur, size, index = [], {}, 0, {}
def flush():
    global cur, size
    if cur:
        shards.append(cur)
        cur, size = {}, 0
def add(name, t):
    global size
    cur[name] = t
    size += t.numel() * 2
    if size > 5e9:
        flush()

add("model.embed_tokens.weight", rnd(V, H))
for i in range(L):
    pre = f"model.layers.{i}."
    add(pre + "input_layernorm.weight", torch.ones(H, dtype=torch.bfloat16))
    add(pre + "self_attn.q_proj.weight", rnd(H, H))
    add(pre + "self_attn.k_proj.weight", rnd(kv, H))
    add(pre + "self_attn.v_proj.weight", rnd(kv, H))
    add(pre + "self_attn.o_proj.weight", rnd(H, H))
    add(pre + "post_attention_layernorm.weight", torch.ones(H, dtype=torch.bfloat16))
    add(pre + "mlp.gate_proj.weight", rnd(F, H))
    add(pre + "mlp.up_proj.weight", rnd(F, H))
    add(pre + "mlp.down_proj.weight", rnd(H, F))
add("model.norm.weight", torch.ones(H, dtype=torch.bfloat16))
add("lm_head.weight", rnd(V, H))
flush()
total = 0
for k, s in enumerate(shards):
    fn = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
    save_file(s, os.path.join(a.out, fn), metadata={"format": "pt"})
    for name, t in s.items():
        index[name] = fn
        total += t.numel() * 2
json.dump({"metadata": {"total_size": total}, "weight_map": index}, open(os.path.join(a.out, "model.safetensors.index.json"), "w"))
cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", rms_norm_eps=1e-5,
           tie_word_embeddings=False, torch_dtype="bfloat16", bos_token_id=0, eos_token_id=1, head_dim=hd,
           attention_bias=False, mlp_bias=False, **p)
json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
print(f"wrote {a.out}: {total / 1e9:.2f} GB in {time.time() - t0:.1f} s")
