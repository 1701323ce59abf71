"""Logits of HF transformers in float32 against Tandem's (`tandem logits --out FILE`, rows x vocab f32) on the same
weights: per position max |tandem - hf| / max |hf|, and argmax agreement."""
import argparse
import numpy as np
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--ids", required=True)
ap.add_argument("--tandem", required=True, nargs="+")
a = ap.parse_args()
ids = [int(x) for x in a.ids.split(",")]
model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).cuda().eval()
with torch.inference_mode():
    hf = model(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()
for path in a.tandem:
    t = np.fromfile(path, dtype="<f4").reshape(len(ids), -1)[:, :hf.shape[1]]
    rel = np.abs(t - hf).max(axis=1) / np.abs(hf).max(axis=1)
    agree = (t.argmax(1) == hf.argmax(1)).mean()
    print(f"{path}: worst row relative error {rel.max():.2e} (mean {rel.mean():.2e}); argmax agreement {agree:.3f}; "
          f"HF f32 logit scale {np.abs(hf).max():.3f}")
