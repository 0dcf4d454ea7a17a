"""Tasks benchmark: each task for both model families through ``eprop-dist train`` (one process per run, so
peak memory and CPU time are per run), with final loss/accuracy, wall time, CPU time (user + sys), peak
RSS, and the learning curves of e-prop+ and bsshslm_2020 side by side (PNG).

    python benchmarks/tasks.py --out runs/bench [--preset quick|example] [--tasks sine_waves ...]
                               [--families eprop_plus ...] [--reuse]

``example`` uses the NEST examples' sizes: sine waves 200 iterations of 1000 ms; evidence accumulation 50
training phases x 32 samples with validation every 10 phases, early stopping and 4 test phases; the
``digits`` stand-in at the N-MNIST example's size (10 training phases x 100 samples, 2 test phases, 150
recurrent neurons; the stand-in's own sample length and learning parameters); ``nmnist`` itself needs the data set in data/nmnist (it cannot be
downloaded on a machine without network: that run then records the task's error).  ``quick`` uses the
short settings of NOTES.md.  Every run writes ``OUT/<task>_<family>/bench_run.json``; with ``--reuse`` a
run whose file exists with the same command is not repeated (long presets can be run piece by piece and
the table and figure assembled at the end).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# N-MNIST example's sample counts and network size (SPEC 7.4); the stand-in's own sample length and
# learning parameters (its 8x8 images have fewer pixels and shorter saccades than N-MNIST's 34x34)
DIGITS_EXAMPLE = ["--set", "batch_size=100", "--set", "n_iter_train=10", "--set", "n_iter_test=2",
                  "--set", "n_rec=150"]
PRESETS = {
    "quick": {
        # configs/sine_waves_quick.toml (110 x NEST's eta) and 10 x NEST's eta 1e-4 for bsshslm_2020
        "sine_waves": {"eprop_plus": ["--set", "n_iter=30", "--set", "eta=1e-5"],
                       "bsshslm_2020": ["--set", "n_iter=30", "--set", "eta=1e-3"]},
        "evidence_accumulation": ["--set", "batch_size=8", "--set", "n_iter_train=10", "--set", "n_iter_test=2",
                                  "--set", "do_early_stopping=false"],
        "digits": {"eprop_plus": [],                 # the stand-in's own defaults (what the test runs)
                   "bsshslm_2020": ["--config", "configs/digits_bsshslm.toml"]},
    },
    "example": {"sine_waves": [], "evidence_accumulation": [],
                "digits": {"eprop_plus": DIGITS_EXAMPLE,
                           "bsshslm_2020": ["--config", "configs/digits_bsshslm.toml"] + DIGITS_EXAMPLE},
                "nmnist": []},
}
WRAP = ("import resource, sys; from eprop_dist.cli import main; rc = main(sys.argv[1:]); "
        "u = resource.getrusage(resource.RUSAGE_SELF); "
        "print('PEAK_RSS_KB', u.ru_maxrss, 'CPU_S', u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")
FAMILIES = {"sine_waves": ("eprop_plus", "bsshslm_2020"), "evidence_accumulation": ("eprop_plus", "bsshslm_2020"),
            "digits": ("eprop_plus", "bsshslm_2020"), "nmnist": ("eprop_plus",)}
ORIGINAL = "bsshslm_2020"


def run_one(task, family, args, out):
    cmd = [sys.executable, "-c", WRAP, "train", task, "--quiet", "--overwrite", "--out", out, "--family", family]
    cmd += list(args)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    res = {"task": task, "family": family, "args": list(args)}
    if p.returncode:
        lines = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith("PEAK_RSS_KB")]
        return dict(res, error=(lines or ["exit code %d" % p.returncode])[-1])
    from eprop_dist.io import read_results
    tail = p.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()
    peak_kb, cpu = int(tail[0]), float(tail[2])
    r = read_results(os.path.join(out, "results.h5"))
    ph = r["phases"]
    tr = ph["label"] == "training"
    te = ph["label"] == "test"
    cfg = r["config"]
    acc = [None if a != a else float(a) for a in ph["accuracy"].tolist()]
    res.update({"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
                "eta_train": r["provenance"]["eta_train"], "n_phases": int(ph["index"].size),
                "loss_first": float(ph["loss"][tr][0]), "loss_last_training": float(ph["loss"][tr][-1]),
                "test_loss": float(ph["loss"][te].mean()) if te.any() else None,
                "test_accuracy": float(ph["accuracy"][te].mean()) if te.any() else None,
                "test_samples": int(te.sum()) * int(cfg.get("batch_size", 1)) if te.any() else 0,
                "curve": {"phase": ph["index"].tolist(), "label": list(ph["label"]), "loss": ph["loss"].tolist(),
                          "accuracy": acc}})
    return res


def plot(results, path):
    """One row per task, e-prop+ and the original family side by side: loss per phase (training line,
    evaluation phases as markers) and, for classification, accuracy on the right axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in results if "curve" in r]
    tasks = list(dict.fromkeys(r["task"] for r in done))
    fams = ("eprop_plus", ORIGINAL)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3.0 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        for ax, fam in zip(row, fams):
            r = next((x for x in done if x["task"] == task and x["family"] == fam), None)
            ax.set_title(f"{task} - {fam}", fontsize=9)
            if r is None:
                ax.text(0.5, 0.5, "not run" if fam in FAMILIES[task] else "no such family (SPEC 7)",
                        ha="center", va="center", transform=ax.transAxes)
                continue
            c = r["curve"]
            lab = c["label"]
            idx = [i for i, x in enumerate(lab) if x == "training"]
            ax.plot([c["phase"][i] for i in idx], [c["loss"][i] for i in idx], "-", color="C0", lw=1,
                    label="training loss")
            ev = [i for i, x in enumerate(lab) if x != "training"]
            if ev:
                ax.plot([c["phase"][i] for i in ev], [c["loss"][i] for i in ev], "s", color="C0", ms=3,
                        label="evaluation loss")
            ax.set_xlabel("phase")
            ax.set_ylabel("loss (MSE)" if fam == "eprop_plus" or task == "sine_waves" else "loss (cross-entropy)",
                          color="C0")
            if any(a is not None for a in c["accuracy"]):
                a2 = ax.twinx()
                a2.plot([c["phase"][i] for i in idx], [c["accuracy"][i] for i in idx], "-", color="C1", lw=1)
                a2.plot([c["phase"][i] for i in ev], [c["accuracy"][i] for i in ev], "D", color="C3", ms=4,
                        label="validation/test accuracy")
                a2.set_ylim(0, 1)
                a2.set_ylabel("accuracy", color="C1")
                a2.legend(fontsize=7, loc="center right")
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--tasks", nargs="*")
    ap.add_argument("--families", nargs="*", choices=("eprop_plus", ORIGINAL))
    ap.add_argument("--reuse", action="store_true", help="keep runs whose bench_run.json has the same command")
    ap.add_argument("--json", help="summary path (default OUT/tasks_bench.json)")
    ap.add_argument("--png", help="figure path (default OUT/learning_curves.png)")
    a = ap.parse_args(argv)
    preset = PRESETS[a.preset]
    for t in a.tasks or ():
        if t not in preset:
            ap.error(f"--tasks: {t!r} is not in preset {a.preset} ({', '.join(preset)})")
    results = []
    for task in preset:
        for fam in FAMILIES[task]:
            args = preset[task][fam] if isinstance(preset[task], dict) else preset[task]
            run_dir = os.path.join(a.out, f"{task}_{fam}")
            saved = os.path.join(run_dir, "bench_run.json")
            selected = (not a.tasks or task in a.tasks) and (not a.families or fam in a.families)
            old = None
            if os.path.exists(saved):
                with open(saved) as f:
                    old = json.load(f)
                if old.get("args") != list(args):
                    old = None
            if selected and not (a.reuse and old is not None):
                r = run_one(task, fam, args, run_dir)
                os.makedirs(run_dir, exist_ok=True)
                with open(saved, "w") as f:
                    json.dump(r, f)
                print(json.dumps({k: v for k, v in r.items() if k != "curve"}), flush=True)
            else:
                r = old
            if r is not None:
                results.append(r)
    os.makedirs(a.out, exist_ok=True)
    with open(a.json or os.path.join(a.out, "tasks_bench.json"), "w") as f:
        json.dump({"preset": a.preset, "results": results}, f, indent=1)
    if results:
        plot(results, a.png or os.path.join(a.out, "learning_curves.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
