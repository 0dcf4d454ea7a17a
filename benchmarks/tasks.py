"""Tasks benchmark: each task for both model families through ``eprop-dist train`` (one process per run, so
peak memory is per run), with final loss/accuracy, wall time, peak RSS, and the learning curves of
e-prop+ and bsshslm_2020 side by side (PNG).

    python benchmarks/tasks.py --out runs/bench [--preset quick|example] [--tasks sine_waves ...]

``example`` uses the NEST examples' sizes (long: evidence accumulation alone is ~15 min per family on one
core; nmnist needs the data in data/nmnist); ``quick`` the short settings that the README quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PRESETS = {
    "quick": {
        "sine_waves": {"eprop_plus": ["--set", "n_iter=30", "--set", "eta=1e-5"],     # configs/sine_waves_quick
                       "bsshslm_2020": ["--set", "n_iter=30"]},                     # NEST's eta 1e-4
        "evidence_accumulation": ["--set", "batch_size=8", "--set", "n_iter_train=10", "--set", "n_iter_test=2",
                                  "--set", "do_early_stopping=false"],
        "digits": ["--config", "configs/digits_bsshslm.toml", "--set", "family=FAMILY"],
    },
    "example": {"sine_waves": [], "evidence_accumulation": [], "digits": [], "nmnist": []},
}
WRAP = ("import resource, sys; from eprop_dist.cli import main; rc = main(sys.argv[1:]); "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
FAMILIES = {"sine_waves": ("eprop_plus", "bsshslm_2020"), "evidence_accumulation": ("eprop_plus", "bsshslm_2020"),
            "digits": ("eprop_plus", "bsshslm_2020"), "nmnist": ("eprop_plus",)}


def run_one(task, family, args, out):
    cmd = [sys.executable, "-c", WRAP, "train", task, "--quiet", "--overwrite", "--out", out]
    extra = [a.replace("FAMILY", family) for a in args]
    if "family=FAMILY" not in args:
        cmd += ["--family", family]
    t0 = time.perf_counter()
    p = subprocess.run(cmd + extra, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        return {"task": task, "family": family, "error": p.stderr.strip().splitlines()[-1:]}
    from eprop_dist.io import read_results
    peak_kb = int(p.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    r = read_results(os.path.join(out, "results.h5"))
    ph = r["phases"]
    tr = ph["label"] == "training"
    te = ph["label"] == "test"
    return {"task": task, "family": family, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
            "loss_first": float(ph["loss"][tr][0]), "loss_last_training": float(ph["loss"][tr][-1]),
            "test_accuracy": float(ph["accuracy"][te].mean()) if te.any() else None,
            "curve": {"phase": ph["index"].tolist(), "label": list(ph["label"]), "loss": ph["loss"].tolist(),
                      "accuracy": [None if a != a else a for a in ph["accuracy"].tolist()]}}


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tasks = list(dict.fromkeys(r["task"] for r in results if "curve" in r))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in results:
            if r["task"] != task or "curve" not in r:
                continue
            c = r["curve"]
            cls = any(a is not None for a in c["accuracy"])
            y = c["accuracy"] if cls else c["loss"]
            keep = [i for i, lab in enumerate(c["label"]) if lab == "training"]
            ax.plot([c["phase"][i] for i in keep], [y[i] for i in keep], "o-", ms=3, label=r["family"])
            ax.set_ylabel("training accuracy" if cls else "training loss")
        ax.set_title(task)
        ax.set_xlabel("phase")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--tasks", nargs="*")
    a = ap.parse_args(argv)
    preset = PRESETS[a.preset]
    results = []
    for task in a.tasks or list(preset):
        for fam in FAMILIES[task]:
            args = preset[task][fam] if isinstance(preset[task], dict) else preset[task]
            r = run_one(task, fam, args, os.path.join(a.out, f"{task}_{fam}"))
            print(json.dumps({k: v for k, v in r.items() if k != "curve"}), flush=True)
            results.append(r)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "tasks_bench.json"), "w") as f:
        json.dump({"preset": a.preset, "results": results}, f, indent=1)
    plot(results, os.path.join(a.out, "learning_curves.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
