"""Runs FlexGen's own benchmark (flexgen.flex_opt from its public repository, copied into .device/flexgen by
`scripts/device/pack.sh --flexgen`, never committed) with its dummy weights, side by side with `tandem bench offload`.

Two things FlexGen needs that the device machine lacks are supplied here, without touching its code:
- the GPU cap: torch's per-process memory fraction, so FlexGen gets the same GiB as Tandem's --gpu-mem;
- a tokenizer: FlexGen's benchmark only encodes one fixed prompt left-padded to --prompt-len (and, with dummy weights,
  never decodes), so a stand-in returns OPT-vocabulary ids of that length instead of downloading facebook/opt-30b's.

usage: python3 flexgen_peer.py FLEXGEN_DIR GPU_CAP_GIB [flex_opt arguments...]
"""
import argparse
import sys

import torch

flexgen_dir, cap_gib, rest = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
sys.path.insert(0, flexgen_dir)
total = torch.cuda.get_device_properties(0).total_memory
torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), 0)

from flexgen import flex_opt  # noqa: E402


class _Encoded:
    def __init__(self, ids):
        self.input_ids = ids


class PromptTokenizer:
    """Left-padded fixed-length prompts: pad id 1 (OPT's), then a handful of ordinary OPT token ids."""
    PROMPT = [2, 41552, 16, 5, 812, 343, 9]

    def __call__(self, prompts, padding="max_length", max_length=8):
        ids = self.PROMPT[-max_length:]
        return _Encoded([[1] * (max_length - len(ids)) + ids for _ in prompts])

    def batch_decode(self, ids, skip_special_tokens=True):
        return [" ".join(map(str, row)) for row in ids]


flex_opt.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: PromptTokenizer())
parser = argparse.ArgumentParser()
flex_opt.add_parser_arguments(parser)
args = parser.parse_args(rest)
print(f"flexgen_peer: GPU capped at {cap_gib} GiB of {total / 2**30:.1f} GiB")
flex_opt.run_flexgen(args)
