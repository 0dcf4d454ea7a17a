"""Merge a study's point files into one table (HDF5 + markdown) and draw the scaling plots."""
from __future__ import annotations

import os

from . import folder
from .results import markdown, point_files, read_point, table, write_table
from .study import StudyError

PLOTS = ("time_per_bio_s.png", "speedup_efficiency.png", "phases.png", "memory.png")


def collect(study, d, report=print):
    """Read every complete point file; report missing ones.  Returns (points, missing tags)."""
    pts, missing = [], []
    for p in study.points:
        path = folder.result_h5(d, p)
        try:
            pts.append(read_point(path))
        except StudyError as e:
            missing.append(p.tag)
            report(f"{p.tag}: {e}")
    extra = set(point_files(d)) - {folder.result_h5(d, p) for p in study.points}
    for e in sorted(extra):
        report(f"ignoring {e}: not a point of this study")
    return pts, missing


def analyze(study, d, plots=True, report=print, allow_missing=False) -> dict:
    pts, missing = collect(study, d, report)
    if missing and not allow_missing:
        raise StudyError(f"{len(missing)} point(s) have no complete result: {', '.join(missing)} "
                         "(see 'status'; --allow-missing merges the others)")
    tab = table(pts)
    srcs = [folder.result_h5(d, p) for p in study.points if p.tag not in missing]
    write_table(os.path.join(d, "scaling.h5"), tab, srcs)
    md = markdown(tab)
    with open(os.path.join(d, "scaling.md"), "w") as f:
        f.write(md)
    written = [os.path.join(d, "scaling.h5"), os.path.join(d, "scaling.md")]
    if plots:
        try:
            import matplotlib
        except ImportError:
            report("matplotlib is not installed (pip install 'eprop-dist[plot]'): table written, no plots")
        else:
            matplotlib.use("Agg")
            written += draw(tab, os.path.join(d, "plots"))
    return {"table": tab, "markdown": md, "files": written}


def draw(tab, out_dir) -> list:
    import matplotlib.pyplot as plt
    import numpy as np
    os.makedirs(out_dir, exist_ok=True)
    c = tab["columns"]
    r = c["ranks"]
    title = f"{tab['study']} ({tab['kind']} scaling)"
    files = []

    def rank_axis(ax, log=True):
        from matplotlib.ticker import NullLocator
        if log:
            ax.set_xscale("log", base=2)
        ax.set_xticks(r, [str(v) for v in r])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("MPI ranks")

    def save(fig, name):
        p = os.path.join(out_dir, name)
        fig.tight_layout()
        fig.savefig(p + ".tmp.png", dpi=110)
        plt.close(fig)
        os.replace(p + ".tmp.png", p)
        files.append(p)

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(r, c["sim_s_per_bio_s"], "o-", label="measured")
    ax.plot(r, c["ideal_s_per_bio_s"], "k--", label="ideal")
    rank_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("wall-clock s per biological s")
    ax.set_title(title)
    ax.legend()
    save(fig, PLOTS[0])

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    a1.plot(r, c["speedup"], "o-", label="measured")
    a1.plot(r, r / r[0], "k--", label="ideal")
    rank_axis(a1)
    a1.set_ylabel("speed-up" if tab["kind"] == "strong" else "scaled speed-up")
    a1.legend()
    a2.plot(r, 100 * c["efficiency"], "o-")
    a2.axhline(100, color="k", ls="--")
    a2.set_ylim(0, max(110, float(np.max(100 * c["efficiency"])) + 10))
    rank_axis(a2)
    a2.set_ylabel("parallel efficiency (%)")
    fig.suptitle(title)
    save(fig, PLOTS[1])

    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(r.size)
    bottom = np.zeros(r.size)
    for ph in ("update", "deliver", "eprop", "communicate", "record"):
        v = c["time_" + ph] * 1000.0 / c["t_sim"]
        ax.bar(x, v, bottom=bottom, label=ph)
        bottom += v
    ax.set_xticks(x, [str(v) for v in r])
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("s per biological s, per phase (max over ranks)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save(fig, PLOTS[2])

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(r, c["peak_rss_MiB_max"], "o-")
    rank_axis(ax)
    ax.set_ylabel("peak RSS per rank (MiB, max)")
    ax.set_title(title)
    save(fig, PLOTS[3])
    return files
