#!/usr/bin/env python3
"""The simulator against real `tandem bench serve` runs (issue 6's validation).

  python3 scripts/sim-vs-runs.py RUNS_DIR [--detail RUN_NAME]

RUNS_DIR holds run folders named sw-<trace>-<rate>-<design> (gpu-run.sh splitwise8b's outputs, unpacked); design
mixed, split or mixed512 picks sim/configs/h200-llama3-8b-<design>.yaml. Each run's requests.csv is replayed by
`./tandem simulate --config ... --trace RUN/requests.csv --rate 0 --duration 0 --out TMP`, and the percentiles of
its summary.json are printed beside the simulator's as a Markdown table. --detail RUN_NAME also compares that run
request by request: TTFT p50 by prompt length and by arrival time.
"""
import csv, json, os, statistics, subprocess, sys, tempfile

# run-folder design names with a sim/configs/h200-llama3-8b-<design>.yaml (splitwise8b: 2 GPUs; splitwise4gpu: 4)
DESIGNS = ("mixed", "split", "mixed512", "mixed4", "splitpool4")

def simulate(run_dir, design, out):
    cfg = f"sim/configs/h200-llama3-8b-{design}.yaml"
    subprocess.run(["./tandem", "simulate", "--config", cfg, "--trace", os.path.join(run_dir, "requests.csv"),
                    "--rate", "0", "--duration", "0", "--out", out], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.load(open(os.path.join(out, "summary.json")))

def pair(a, b, scale=1000.0, fmt="%.1f / %.1f"):
    return fmt % (a * scale, b * scale)

def table(runs_dir):
    print("| run | TTFT p50 real / sim (ms) | TTFT p90 real / sim | TBT p50 real / sim | TBT p90 real / sim | E2E p50 real / sim (s) | E2E p90 real / sim |")
    print("|---|---|---|---|---|---|---|")
    for name in sorted(os.listdir(runs_dir)):
        run = os.path.join(runs_dir, name)
        design = name.rsplit("-", 1)[-1]
        if not os.path.isdir(run) or design not in DESIGNS:
            continue
        with tempfile.TemporaryDirectory() as out:
            s = simulate(run, design, out)
        r = json.load(open(os.path.join(run, "summary.json")))["latencySeconds"]
        print("| %s | %s | %s | %s | %s | %s | %s |" % (name, pair(r["ttft"]["p50"], s["ttftS"]["p50"]), pair(r["ttft"]["p90"], s["ttftS"]["p90"]),
              pair(r["tbtPerRequest"]["p50"], s["tbtS"]["p50"]), pair(r["tbtPerRequest"]["p90"], s["tbtS"]["p90"]),
              pair(r["e2e"]["p50"], s["e2eS"]["p50"], 1, "%.2f / %.2f"), pair(r["e2e"]["p90"], s["e2eS"]["p90"], 1, "%.2f / %.2f")))

def detail(runs_dir, name):
    run = os.path.join(runs_dir, name)
    with tempfile.TemporaryDirectory() as out:
        simulate(run, name.rsplit("-", 1)[-1], out)
        sim = list(csv.DictReader(open(os.path.join(out, "requests.csv"))))
    real = list(csv.DictReader(open(os.path.join(run, "requests.csv"))))
    rows = sorted((float(r["sent_s"]), int(r["server_prompt_tokens"]), float(r["ttft_s"]) * 1e3, float(s["ttft_s"]) * 1e3)
                  for r, s in zip(real, sim))
    med = lambda xs: statistics.median(xs)
    print(f"{name}: TTFT p50 (ms) real / simulated")
    for lo, hi in [(0, 256), (256, 1024), (1024, 2048), (2048, 1 << 30)]:
        b = [x for x in rows if lo <= x[1] < hi]
        if b:
            print(f"  prompts {lo}-{hi if hi < 1 << 30 else 'max'}: {len(b)} requests, {med([x[2] for x in b]):.1f} / {med([x[3] for x in b]):.1f}")
    for i in range(0, len(rows), 20):
        b = rows[i:i + 20]
        print(f"  sent {b[0][0]:.1f}-{b[-1][0]:.1f} s: {med([x[2] for x in b]):.1f} / {med([x[3] for x in b]):.1f}")

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    table(sys.argv[1])
    if len(sys.argv) == 4 and sys.argv[2] == "--detail":
        detail(sys.argv[1], sys.argv[3])
