"""HDF5 files of a scaling study: one file per point (written atomically) and the merged table.

Point file layout (``FORMAT``)::

    attrs: format, complete (= 1, written last), study, kind, index, ranks, nodes, scale, t_sim,
           warmup, seed, D
    /network            attrs: the resolved [network] table of the point
    /provenance         attrs: package_version, git_revision, mpi_library, n_ranks, hosts, slurm_job_id,
                        slurm_step_id, slurm_ntasks, cpus_per_task, launcher, python, time_utc
    /ranks/<column>     one value per rank: rank, host, t_build, t_sim, time_<phase>, peak_rss_MiB,
                        rss_after_build_MiB, n_syn, syn_bytes, neuron_bytes, other_bytes,
                        n_local_neurons, spikes, syn_events, ep_events
    /summary            attrs: n_neurons, n_synapses, build_s, sim_s, sim_s_per_bio_s, spikes,
                        syn_events, ep_events, bytes_per_synapse, bytes_per_neuron, peak_rss_MiB_max,
                        time_<phase> (max over ranks)

The file is written as ``<name>.tmp.<pid>`` and renamed, so only finished points carry the final
name; readers also require ``complete == 1``.
"""
from __future__ import annotations

import glob
import os

import h5py
import numpy as np

from .study import StudyError

FORMAT = "eprop-dist-scaling-point/1"
TABLE_FORMAT = "eprop-dist-scaling-table/1"
PHASES = ("update", "deliver", "eprop", "communicate", "record")
POINT_KEYS = ("study", "kind", "index", "ranks", "nodes", "scale", "t_sim", "warmup", "seed")


def _summary(rows, point, n_nodes):
    tot_syn = sum(r["n_syn"] for r in rows)
    sim_s = max(r["t_sim"] for r in rows)
    s = {"n_neurons": int(n_nodes), "n_synapses": int(tot_syn),
         "build_s": max(r["t_build"] for r in rows), "sim_s": sim_s,
         "sim_s_per_bio_s": sim_s * 1000.0 / point.t_sim,
         "spikes": int(sum(r["spikes"] for r in rows)), "syn_events": int(sum(r["syn_events"] for r in rows)),
         "ep_events": int(sum(r["ep_events"] for r in rows)),
         "bytes_per_synapse": sum(r["syn_bytes"] for r in rows) / max(1, tot_syn),
         "bytes_per_neuron": sum(r["neuron_bytes"] for r in rows) / max(1, n_nodes),
         "peak_rss_MiB_max": max(r["peak_rss_MiB"] for r in rows)}
    for p in PHASES:
        s["time_" + p] = max(r["timers"][p] for r in rows)
    return s


def write_point(path, point, provenance, rows, n_nodes, D):
    """Write one point file atomically (temporary name, complete flag last, rename)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    summary = _summary(rows, point, n_nodes)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["complete"] = 0
            for k in POINT_KEYS:
                f.attrs[k] = getattr(point, k)
            f.attrs["D"] = int(D)
            g = f.create_group("network")
            for k, v in point.network.items():
                g.attrs[k] = v
            g = f.create_group("provenance")
            for k, v in provenance.items():
                g.attrs[k] = np.array(v, dtype=h5py.string_dtype()) if isinstance(v, list) else v
            g = f.create_group("ranks")
            rows = sorted(rows, key=lambda r: r["rank"])
            for key in ("rank", "t_build", "t_sim", "peak_rss_MiB", "rss_after_build_MiB", "n_syn", "syn_bytes",
                        "neuron_bytes", "other_bytes", "n_local_neurons", "spikes", "syn_events", "ep_events"):
                g[key] = np.array([r[key] for r in rows])
            g["host"] = np.array([r["host"] for r in rows], dtype=h5py.string_dtype())
            for p in PHASES:
                g["time_" + p] = np.array([r["timers"][p] for r in rows], dtype=float)
            g = f.create_group("summary")
            for k, v in summary.items():
                g.attrs[k] = v
            f.flush()
            f.attrs["complete"] = 1
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return summary


def read_point(path) -> dict:
    """Read a point file into a flat dict (point keys, network_*, provenance_*, summary, per-rank arrays).
    Raises StudyError for a missing, foreign or incomplete file."""
    if not os.path.isfile(path):
        raise StudyError(f"point result {path} not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise StudyError(f"{path} is not a scaling point file (format {f.attrs.get('format')!r})")
            if int(f.attrs.get("complete", 0)) != 1:
                raise StudyError(f"{path} is incomplete (the job did not finish writing it)")
            out = {k: _py(f.attrs[k]) for k in POINT_KEYS + ("D",)}
            out["network"] = {k: _py(v) for k, v in f["network"].attrs.items()}
            out["provenance"] = {k: _py(v) for k, v in f["provenance"].attrs.items()}
            out["summary"] = {k: _py(v) for k, v in f["summary"].attrs.items()}
            out["per_rank"] = {k: f["ranks"][k][()] for k in f["ranks"]}
    except OSError as e:
        raise StudyError(f"{path} is not a readable HDF5 file: {e}") from None
    return out


def _py(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def point_files(study_dir):
    """Final-named point files of a study folder (temporary files of unfinished jobs are ignored)."""
    return sorted(p for p in glob.glob(os.path.join(study_dir, "results", "*.h5")) if ".tmp." not in p)


# ---- the merged table ---------------------------------------------------------------------------
COLUMNS = ("index", "ranks", "nodes", "t_sim", "n_neurons", "n_synapses", "sim_s_per_bio_s", "build_s", "speedup",
           "efficiency", "ideal_s_per_bio_s", "peak_rss_MiB_max", "bytes_per_synapse", "bytes_per_neuron",
           "spikes", "syn_events", "ep_events") + tuple("time_" + p for p in PHASES)


def table(points: list) -> dict:
    """Columns of the merged table, rows sorted by rank count.

    Strong scaling (fixed size): speedup = T(r0) / T(r), efficiency = speedup * r0 / r, ideal
    time T(r0) * r0 / r.  Weak scaling (fixed size per rank): efficiency = T(r0) / T(r), speedup
    (scaled) = efficiency * r / r0, ideal time T(r0).  r0 is the smallest rank count, T the wall-clock
    time per biological second (max over ranks).  time_<phase> columns are seconds of the timed part
    (t_sim ms of biological time), max over ranks."""
    if not points:
        raise StudyError("no complete point files to merge")
    kinds = {p["kind"] for p in points}
    studies = {p["study"] for p in points}
    if len(kinds) != 1 or len(studies) != 1:
        raise StudyError(f"point files of different studies/kinds: {sorted(studies)} {sorted(kinds)}")
    kind = kinds.pop()
    pts = sorted(points, key=lambda p: p["ranks"])
    r = np.array([p["ranks"] for p in pts], float)
    T = np.array([p["summary"]["sim_s_per_bio_s"] for p in pts], float)
    r0, T0 = r[0], T[0]
    if kind == "strong":
        speed = T0 / T
        eff = speed * r0 / r
        ideal = T0 * r0 / r
    else:
        eff = T0 / T
        speed = eff * r / r0
        ideal = np.full_like(T, T0)
    cols = {"index": np.array([p["index"] for p in pts]), "ranks": r.astype(int),
            "nodes": np.array([p["nodes"] for p in pts]), "t_sim": np.array([p["t_sim"] for p in pts], float),
            "sim_s_per_bio_s": T, "speedup": speed,
            "efficiency": eff, "ideal_s_per_bio_s": ideal}
    for c in COLUMNS:
        if c not in cols:
            cols[c] = np.array([p["summary"][c] for p in pts])
    return {"kind": kind, "study": studies.pop(), "columns": cols}


def write_table(path, tab, sources):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = TABLE_FORMAT
            f.attrs["kind"] = tab["kind"]
            f.attrs["study"] = tab["study"]
            g = f.create_group("table")
            for c in COLUMNS:
                g[c] = tab["columns"][c]
            f["sources"] = np.array([os.path.basename(s) for s in sources], dtype=h5py.string_dtype())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_table(path) -> dict:
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != TABLE_FORMAT:
            raise StudyError(f"{path} is not a merged scaling table")
        return {"kind": _py(f.attrs["kind"]), "study": _py(f.attrs["study"]),
                "columns": {c: f["table"][c][()] for c in f["table"]}}


def markdown(tab) -> str:
    c = tab["columns"]
    kind = tab["kind"]
    head = ("| ranks | nodes | neurons | synapses | s per bio-s | ideal | "
            f"{'speed-up' if kind == 'strong' else 'scaled speed-up'} | efficiency | update | deliver | e-prop | "
            "communicate | peak RSS/rank (MiB) | B/synapse | spikes | syn. events |")
    lines = [f"Scaling study `{tab['study']}` ({kind}); times per biological second are the maximum over ranks.",
             "", head, "|" + "|".join(["---"] * 16) + "|"]
    for i in range(len(c["ranks"])):
        T = c["sim_s_per_bio_s"][i]
        ph = [c["time_" + p][i] for p in ("update", "deliver", "eprop", "communicate")]
        tot = sum(ph) or 1.0
        lines.append(f"| {c['ranks'][i]} | {c['nodes'][i]} | {c['n_neurons'][i]} | {c['n_synapses'][i]} | "
                     f"{T:.3f} | {c['ideal_s_per_bio_s'][i]:.3f} | {c['speedup'][i]:.2f} | "
                     f"{100 * c['efficiency'][i]:.0f}% | "
                     + " | ".join(f"{100 * x / tot:.0f}%" for x in ph)
                     + f" | {c['peak_rss_MiB_max'][i]:.0f} | {c['bytes_per_synapse'][i]:.0f} | "
                     f"{c['spikes'][i]} | {c['syn_events'][i]} |")
    lines.append("")
    lines.append("Phase columns: share of the timed part's update + deliver + e-prop + communicate time.")
    return "\n".join(lines) + "\n"
