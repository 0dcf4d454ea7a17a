"""``eprop-dist plot RUN_DIR``: PNG figures of a run (needs the optional extra ``plot``: matplotlib).

Writes loss.png (loss, and accuracy for classification, per phase and label), readout.png (readout vs
target of the last evaluated phase), raster.png (recorded recurrent spikes), weights.png (histograms of
each e-prop projection before and after training).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import EpropError
from ..io import read_results


def _mpl():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EpropError("eprop-dist plot needs matplotlib: pip install 'eprop-dist[plot]'") from None
    return plt


def plot_run(run_dir, out_dir=None):
    path = os.path.join(run_dir, "results.h5")
    if not os.path.isfile(path):
        raise EpropError(f"no results.h5 in {run_dir}")
    plt = _mpl()
    r = read_results(path)
    out_dir = out_dir or run_dir
    os.makedirs(out_dir, exist_ok=True)
    files = []
    cfg = r["config"]
    title = f"{cfg.get('task')} ({cfg.get('family')})"

    ph = r.get("phases")
    if ph is not None:
        classify = np.any(np.isfinite(ph["accuracy"]))
        fig, axes = plt.subplots(2 if classify else 1, 1, figsize=(7, 6 if classify else 3.5), squeeze=False)
        for lab in dict.fromkeys(ph["label"]):
            sel = ph["label"] == lab
            axes[0, 0].plot(ph["index"][sel], ph["loss"][sel], "o-", ms=3, label=lab)
            if classify:
                axes[1, 0].plot(ph["index"][sel], ph["accuracy"][sel], "o-", ms=3, label=lab)
        axes[0, 0].set_ylabel("loss")
        axes[0, 0].legend()
        axes[0, 0].set_title(title)
        if classify:
            axes[1, 0].set_ylabel("accuracy")
            axes[1, 0].set_ylim(0, 1)
        axes[-1, 0].set_xlabel("phase")
        files.append(_save(fig, plt, out_dir, "loss.png"))

    tr = r.get("traces") or {}
    if tr:
        name = max(tr, key=lambda n: tr[n]["phase"])
        y, ys = tr[name]["readout_signal"], tr[name]["target_signal"]
        n_show = min(4, y.shape[0])
        n_out = y.shape[2]
        fig, ax = plt.subplots(1, 1, figsize=(8, 3.5))
        t = np.arange(n_show * y.shape[1])
        for q in range(n_out):
            c = f"C{q % 10}"
            ax.plot(t, y[:n_show, :, q].ravel(), color=c, lw=1, label=f"readout {q}" if n_out <= 4 else None)
            ax.plot(t, ys[:n_show, :, q].ravel(), color=c, lw=1, ls="--")
        ax.set_xlabel("step (ms)")
        ax.set_ylabel("signal")
        ax.set_title(f"{title}: readout (solid) vs target (dashed), phase {tr[name]['phase']} ({tr[name]['label']})")
        if n_out <= 4:
            ax.legend(fontsize=7)
        files.append(_save(fig, plt, out_dir, "readout.png"))

    sp = r.get("spikes") or {}
    if sp:
        fig, ax = plt.subplots(1, 1, figsize=(8, 3.5))
        for pop, ev in sp.items():
            ax.plot(ev["times"], ev["node_ids"], "|", ms=2, label=pop)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("node id in population")
        ax.set_title(f"{title}: recurrent spikes")
        files.append(_save(fig, plt, out_dir, "raster.png"))

    w = r.get("weights") or {}
    if w:
        projs = sorted(w.get("initial", {}))
        fig, axes = plt.subplots(1, len(projs), figsize=(4 * len(projs), 3.2), squeeze=False)
        for ax, p in zip(axes[0], projs):
            for when, c in (("initial", "C0"), ("final", "C3")):
                v = w[when][p]["weight"]
                if v.size:
                    ax.hist(v, bins=50, alpha=0.5, color=c, label=when)
            ax.set_title(p)
            ax.set_xlabel("weight (pA)")
            ax.legend(fontsize=7)
        files.append(_save(fig, plt, out_dir, "weights.png"))
    return files


def _save(fig, plt, out_dir, name):
    p = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
