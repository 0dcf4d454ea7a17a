"""Checkpoints: the complete state of a training run, keyed by gid, so that it resumes bit-identically on
the same or a different number of ranks (issue 10 item 6).

One HDF5 file (``DIR/checkpoint.h5``, h5py, no pickle) holds

* the resolved config (JSON) and its SHA-256, the format version, the phase index and the step;
* the pipeline's results so far (``tasks/common.py``: phase records, traces, initial weights, timers,
  the errors handed to the phase schedule);
* the core state of every kernel object (``Core.kernels``), described by ONE table, :data:`TABLE`: every
  public attribute of every kernel class is listed with its *kind*:

  ``rec`` / ``out`` / ``par`` / ``tgt`` / ``h``  one row per recurrent neuron / readout / parrot / target /
                                         history row, keyed by the node's gid (``out1``: readouts on axis 1)
  ``row``                                one entry per source row of the CSRs, keyed by the source gid
                                         (several ranks hold a row of the same source: the copies must agree)
  ``syn``                                one entry per e-prop synapse, keyed by (source gid, target gid,
                                         ordinal among the multapses of that pair in CSR order); the model
                                         index is checked too
  ``ring``                               history rings (n_h, capacity, ...): the live keys of each row,
                                         stored by absolute key (capacity may differ per rank)
  ``fr_ring``                            bsshslm firing-rate regulariser ring by update interval
  ``global``                             identical on every rank (checked when written), rank 0's value
  ``max`` / ``sum``                      scalars agreed as the max / counters summed (restored on rank 0)
  ``special``                            own code below: incoming spikes, recorder buffers, ring sizes
  ``zero``                               must be empty/false at a safe point (checked when written)
  ``build``                              rebuilt from the config (parameters, CSRs, derived tables)
  ``scratch`` / ``link``                 per-window scratch values / links between the kernel objects

  ``tests/unit/test_checkpoint.py`` fails when a kernel class has a public attribute the table does not
  list (or the table lists one that no longer exists), so a new state array cannot be forgotten.

The random streams are counter-based (``csrc/rng.pxd``: keyed by seed, gid, connection and stamp), so the
step is their position: nothing else to store.  A checkpoint is written at a phase end (all ranks are
there): every rank's state is gathered to rank 0, which writes a temporary file, fsyncs it and renames it
over the previous checkpoint; ``comm.check`` makes a write error end every rank.  Every rank reads the file
on resume and takes the rows of the gids it owns.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys

import numpy as np

from .errors import EpropError

FORMAT = "eprop-dist checkpoint"
VERSION = 1
FILENAME = "checkpoint.h5"
EXIT_CHECKPOINTED = 75          # EX_TEMPFAIL: stopped on a signal after writing a checkpoint; resume later
# config keys that --resume accepts changed (they only say how many phases run)
RESUME_CHANGEABLE = ("n_iter", "n_iter_train", "n_iter_test")
GID_MASK = 0x7FFFFFFF


class CheckpointError(EpropError):
    """A checkpoint cannot be written, read, or does not fit the network it is loaded into."""


class CheckpointStop(Exception):
    """Raised after the checkpoint requested by a signal was written: the run ends cleanly (not an error:
    `eprop-dist train` exits with EXIT_CHECKPOINTED on every rank, nothing is aborted)."""

    def __init__(self, signame, where, path):
        super().__init__(f"stopped by {signame} {where}; checkpoint written to {path}")
        self.signame, self.where, self.path = signame, where, path


# ---------------------------------------------------------------------------------------------
# THE table: every public attribute of every kernel object (Core.kernels and the driver itself)
# ---------------------------------------------------------------------------------------------
def _kinds(kind, names):
    return {n: kind for n in names.split()}


TABLE = {
    "core": {**_kinds("global", "t last_len"),
             **_kinds("build", "D shift d_ro n_rec n_out n_par n_tgt dt bsshslm update_interval learning_window "
                               "reset_on_update"),
             **_kinds("zero", "delivered"), **_kinds("scratch", "grow_what"), **_kinds("sum", "t_deliver t_update"),
             **_kinds("link", "rec out parrots history optimizer syn bsshslm_syn delivery generators recording "
                              "kernels")},
    "rec": {**_kinds("build", "model surrogate_gradient_function refractory_counts ignore_and_spike refractory_input "
                              "flush_interval ignore_and_spike_offset ignore_and_spike_interval P_v_m P_i_in P_z_in "
                              "v_th v_min v_reset I_e E_L tau_m adapt_beta P_adapt c_reg f_target kappa kappa_reg "
                              "surrogate_gradient_height surrogate_gradient_width"),
            **_kinds("rec", "v_m i_in adaptation v_th_adapt f_av surrogate_gradient refractory_input_sum "
                            "refractory_steps t_last_emit ignore_and_spike_countdown n_spikes_interval z")},
    "out": {**_kinds("build", "P_v_m P_i_in v_min I_e E_L P_z_in loss target_gen learning_window_gen "
                              "target_gen_lag learning_window_gen_lag target_weight learning_window_weight "
                              "normalizer_indptr normalizer_src_readout normalizer_weight"),
            **_kinds("out", "v_m i_in readout_signal target_signal error_signal learning_window_signal "
                            "readout_signal_unnorm")},
    "parrots": {"flush_interval": "build", "t_last_emit": "par"},
    "history": {**_kinds("special", "capacity cmask n_fr_intervals"),
                **_kinds("build", "shift has_history isi_trace_cutoff update_interval fast_path fast_class fast_only "
                                  "class_block class_powers bsshslm_settle"),
                **_kinds("ring", "surrogate_gradient learning_signal firing_rate_reg valid update_count prefix"),
                **_kinds("h", "front end n_entries first_update_key n_update_keys"),
                "firing_rate_reg_interval": "fr_ring", "prefix_done": "max",
                **_kinds("scratch", "missing_t missing_tgt_lid")},
    "optimizer": {**_kinds("build", "optimizer_type optimize_each_step weight_recorder average_gradient batch_size "
                                    "eta_change_count eta eta_first_change Wmin Wmax beta_1 beta_2 epsilon"),
                  **_kinds("syn", "cumulative_gradient eta_current optimization_step m v beta_1_power beta_2_power")},
    "syn": {**_kinds("build", "indptr tgt_lid delay syn_model n_rec shift settle_windows"),
            "n_settled": "sum", "settle_next": "global",
            **_kinds("syn", "weight z_bar e_bar e_bar_reg epsilon gradient t_spike_previous "
                            "remaining_steps_until_cutoff decay_steps previous_was_flush z_pending"),
            **_kinds("link", "rec out history optimizer"), "n_fast_events": "sum",
            "n_fast_adaptive": "sum"},
    "bsshslm_syn": {**_kinds("syn", "t_previous_update t_next_update t_first_spike next_entry window_open sum_e "
                                    "gradient_window held_key"),
                    **_kinds("build", "kappa n_rec update_interval learning_window"),
                    "settled_through": "max", "n_fast_windows": "sum",
                    **_kinds("link", "syn rec out history optimizer")},
    "delivery": {"input_ring": "tgt",
                 **_kinds("build", "ring_length tgt_gid src_row_of_gid static_indptr static_tgt_lid static_delay "
                                   "static_weight static_poisson_key ls_indptr ls_tgt_lid ls_weight n_rec n_out n_tgt "
                                   "d_ro bsshslm"),
                 **_kinds("global", "error_all readout_u_all"), **_kinds("out1", "error_local readout_u_local"),
                 "spikes_out": "scratch", "n_outgoing": "zero", **_kinds("special", "spikes_in n_incoming"),
                 **_kinds("sum", "n_syn_events n_ep_events t_eprop"),
                 **_kinds("link", "history syn bsshslm_syn optimizer generators recording")},
    "generators": {**_kinds("global", "spike_gen_keys spike_gen_next rate_indptr rate_times rate_values"),
                   # poisson parameters are pushed again before every Simulate (Simulation._refresh_devices)
                   **_kinds("build", "poisson_src_row poisson_gid poisson_start poisson_stop poisson_lambda seed")},
    "recording": {**_kinds("build", "multimeter_start multimeter_stop multimeter_interval slot_multimeter slot_tgt_lid "
                                    "slot_field slot_indptr slot_order learning_signal_shift spike_recorded "
                                    "any_weight_recorder weight_recorded"),
                  **_kinds("special", "sample_t sample_slot sample_value n_samples spike_key spike_multiplicity n_spikes "
                                      "weight_stamp weight_src_gid weight_tgt_gid weight_recorder_id weight_value "
                                      "n_weights")},
}
KINDS = ("rec", "out", "out1", "par", "tgt", "h", "syn", "row", "ring", "fr_ring", "global", "max", "sum", "special", "zero",
         "build", "scratch", "link")
INDEXED = {"rec": ("rec", 0), "out": ("out", 0), "out1": ("out", 1), "par": ("par", 0), "tgt": ("tgt", 0),
           "h": ("h", 0), "syn": ("syn", 0), "row": ("row", 0)}
SPACES = ("rec", "out", "par", "tgt", "h", "syn", "row")
# "row": one entry per source row of the CSRs (key: source gid).  A source has a row on every rank with
# synapses from it, so per-row state must be the same on all of them (it is driven by the source's events
# only); the merge keeps one copy and checks that the others agree.  No kernel array uses it yet.
SHARED_SPACES = ("row",)


def kernel_objects(core):
    """name -> object for every entry of TABLE (the driver is 'core')."""
    return {"core": core, **core.kernels}


def public_attributes(obj):
    """The public (cdef public) attributes of a compiled kernel object: its type's getset descriptors."""
    return sorted(n for n, v in vars(type(obj)).items()
                  if not n.startswith("_") and type(v).__name__ == "getset_descriptor")


def config_hash(config):
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------
def _composite(cols, radices, what):
    """One int64 key per row from integer columns (mixed radix); refuses an int64 overflow."""
    total = 1
    for r in radices:
        total *= int(r)
    if total >= 2**63:
        raise CheckpointError(f"checkpoint: the {what} keys do not fit 64 bits (radices {radices})")
    key = np.zeros(np.asarray(cols[0]).size, np.int64)
    for c, r in zip(cols, radices):
        key = key * np.int64(r) + np.asarray(c, np.int64)
    return key


def _ordinal(a, b):
    """Position of each (a, b) pair among the equal pairs before it (arrays sorted by (a, b) groups)."""
    n = a.size
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.ones(n, bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    first = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return np.arange(n) - first


def _ordinal_any(cols):
    """Occurrence index of each row among equal rows in the given order (rows need not be grouped)."""
    n = np.asarray(cols[0]).size
    if n == 0:
        return np.zeros(0, np.int64)
    o = np.lexsort(tuple(reversed(cols)))
    srt = [np.asarray(c)[o] for c in cols]
    diff = np.zeros(n, bool)
    diff[0] = True
    for c in srt:
        diff[1:] |= c[1:] != c[:-1]
    first = np.maximum.accumulate(np.where(diff, np.arange(n), 0))
    occ = np.empty(n, np.int64)
    occ[o] = np.arange(n) - first
    return occ


def _space_keys(sim):
    """Key columns of every index space on this rank."""
    c, st = sim.core, sim.st
    tg = np.asarray(c.delivery.tgt_gid, np.int64)
    n_h = c.n_rec + c.n_out
    indptr = np.asarray(c.syn.indptr)
    src = np.repeat(np.asarray(st.sources, np.int64), np.diff(indptr)) if indptr.size > 1 else np.zeros(0, np.int64)
    tgt = tg[np.asarray(c.syn.tgt_lid)] if src.size else np.zeros(0, np.int64)
    return {"rec": (tg[: c.n_rec],), "out": (tg[c.n_rec:n_h],), "par": (tg[n_h:],), "tgt": (tg,), "h": (tg[:n_h],),
            "syn": (src, tgt, _ordinal(src, tgt)), "row": (np.asarray(st.sources, np.int64),)}


def _radices(sim, space, ord_max):
    N = int(sim.k.n_nodes) + 1
    return (N, N, int(ord_max) + 1) if space == "syn" else (N,)


# ---------------------------------------------------------------------------------------------
# this rank's state
# ---------------------------------------------------------------------------------------------
def _live_rows(hs, n_h, shift):
    """(base, count) of the live ring keys of every history row (the rule of state.grow_history)."""
    C = int(hs.capacity)
    front = np.asarray(hs.front)[:n_h]
    ulo = np.asarray(hs.first_update_key)[:n_h]
    end = np.asarray(hs.end)[:n_h]
    base = np.maximum(np.minimum(front, ulo) - shift, 0)
    cnt = np.clip(np.minimum(end, base + C - 1) - base + 1, 0, C)
    return base.astype(np.int64), cnt.astype(np.int64)


def _fr_rows(c, n_h):
    hs = c.history
    F = int(hs.n_fr_intervals)
    T = int(c.update_interval)
    q_now = max(0, (int(c.t) - 2) // T + 1)
    lo = max(0, q_now - F + 1)
    return np.full(n_h, lo, np.int64), np.full(n_h, q_now - lo + 1, np.int64)


# history rings stored slot-major (capacity, n_h, ...) in the core; the checkpoint keys every ring by
# (history row, absolute key), so these are seen through their (n_h, capacity, ...) transpose
SLOT_MAJOR_RINGS = ("prefix",)


def _ring_rows(hs, a):
    arr = np.asarray(getattr(hs, a))
    return arr.swapaxes(0, 1) if a in SLOT_MAJOR_RINGS else arr


def _ragged_take(arr, base, cnt, modulo):
    rows = np.repeat(np.arange(base.size), cnt)
    off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return arr[rows, (base[rows] + off) % modulo]


def local_state(sim):
    """This rank's checkpoint piece: plain numpy arrays and numbers, keyed for the merge."""
    c, st = sim.core, sim.st
    if c.delivered or c.delivery.n_outgoing:
        raise CheckpointError("checkpoint: the core is not at a window boundary (internal error)")
    objs = kernel_objects(c)
    n_h = c.n_rec + c.n_out
    keys = _space_keys(sim)
    p = {"rank": sim.comm.rank, "keys": keys, "indexed": {}, "global": {}, "max": {}, "sum": {}}
    for oname, table in TABLE.items():
        o = objs[oname]
        for a, kind in table.items():
            full = f"{oname}.{a}"
            if kind in INDEXED:
                p["indexed"][full] = np.array(getattr(o, a))
            elif kind in ("global", "max", "sum"):
                v = getattr(o, a)
                p[kind][full] = np.array(v) if not isinstance(v, (int, float, bool)) else v
    hs = c.history
    base, cnt = _live_rows(hs, n_h, int(hs.shift))
    p["ring"] = {"base": base, "cnt": cnt, "capacity": int(hs.capacity),
                 "values": {a: _ragged_take(_ring_rows(hs, a), base, cnt, int(hs.capacity))
                            for a, k in TABLE["history"].items() if k == "ring"}}
    if c.bsshslm:
        lo, n = _fr_rows(c, n_h)
        p["fr"] = {"base": lo, "cnt": n, "F": int(hs.n_fr_intervals),
                   "values": _ragged_take(np.asarray(hs.firing_rate_reg_interval), lo, n, int(hs.n_fr_intervals))}
    dl = c.delivery
    p["spikes_in"] = np.array(dl.spikes_in[: 2 * dl.n_incoming]).reshape(-1, 2)
    # multimeter samples, keyed by (multimeter index, target gid, field, ordinal) of their slot; samples a
    # cleared multimeter will never show again are left out
    rc = c.recording
    sim.mm_store.drain(c)                   # the samples live in the compact store (mm_store.py)
    s_t, s_slot, s_value = sim.mm_store.export()
    ns = s_t.size
    keep = np.ones(ns, bool)
    if ns and st.mm_gids.size:
        cut = np.array([sim._cleared.get(int(g), -1) for g in st.mm_gids], np.int64)
        keep = s_t + 1 > cut[np.asarray(st.sl_mm)[s_slot]]
    slot_cols = _slot_cols(sim)
    p["samples"] = {"t": s_t[keep].astype(np.int64), "value": s_value[keep],
                    "slot": tuple(col[s_slot[keep]] for col in slot_cols)}
    p["spike_rec"] = {"key": np.array(rc.spike_key[: rc.n_spikes]),
                      "mult": np.array(rc.spike_multiplicity[: rc.n_spikes])}
    nw = rc.n_weights
    p["weight_rec"] = {n: np.array(getattr(rc, n)[:nw]) for n in ("weight_stamp", "weight_src_gid",
                                                                  "weight_tgt_gid", "weight_recorder_id",
                                                                  "weight_value")}
    return p


def _slot_cols(sim):
    st = sim.st
    tg = np.asarray(sim.core.delivery.tgt_gid, np.int64)
    mm = np.asarray(st.sl_mm, np.int64)
    tgt = tg[np.asarray(st.sl_tid, np.int64)] if mm.size else np.zeros(0, np.int64)
    field = np.asarray(st.sl_field, np.int64)
    return (mm, tgt, field, _ordinal_any((mm, tgt, field)))


def _sim_state(sim):
    g = np.array(sorted(sim.gen_set_t), np.int64)
    cl = np.array(sorted(sim._cleared), np.int64)
    return {"gen_set_gid": g, "gen_set_t": np.array([sim.gen_set_t[int(x)] for x in g], np.int64),
            "cleared_gid": cl, "cleared_t": np.array([sim._cleared[int(x)] for x in cl], np.int64)}


# ---------------------------------------------------------------------------------------------
# merge (rank 0) and write
# ---------------------------------------------------------------------------------------------
def _merge_ragged(parts, row_keys):
    """Concatenate ragged rows of every rank and order them by key."""
    keys = np.concatenate(row_keys)
    base = np.concatenate([q["base"] for q in parts])
    cnt = np.concatenate([q["cnt"] for q in parts])
    start = np.cumsum(cnt) - cnt
    o = np.argsort(keys, kind="stable")
    cnt_o = cnt[o]
    flat = np.repeat(start[o], cnt_o) + (np.arange(int(cnt_o.sum())) - np.repeat(np.cumsum(cnt_o) - cnt_o, cnt_o))
    return keys[o], base[o], cnt_o, flat


def merge(pieces, sim):
    """Rank 0: one gid-keyed state from every rank's piece."""
    out = {"spaces": {}, "arrays": {}, "global": {}, "max": {}, "sum": {}}
    pieces = sorted(pieces, key=lambda q: q["rank"])
    ord_max = max([int(q["keys"]["syn"][2].max()) if q["keys"]["syn"][2].size else 0 for q in pieces])
    orders = {}
    shared = {}
    for space in SPACES:
        cols = [np.concatenate([q["keys"][space][i] for q in pieces]) for i in range(len(pieces[0]["keys"][space]))]
        comp = _composite(cols, _radices(sim, space, ord_max), space)
        o = np.argsort(comp, kind="stable")
        first = np.ones(o.size, bool)
        first[1:] = np.diff(comp[o]) != 0
        if space in SHARED_SPACES:
            shared[space] = (o, first)
            o = o[first]
        elif not first.all():
            raise CheckpointError(f"checkpoint: duplicate {space} keys (internal error)")
        orders[space] = o
        out["spaces"][space] = [col[o] for col in cols]
    out["ord_max"] = ord_max
    for full in pieces[0]["indexed"]:
        oname, a = full.split(".")
        space, axis = INDEXED[TABLE[oname][a]]
        arrs = [q["indexed"][full] for q in pieces]
        n_loc = [q["keys"][space][0].size for q in pieces]
        if all(x.shape[axis] == 0 for x in arrs) and sum(n_loc) > 0:
            out["arrays"][full] = ("empty", arrs[0])          # absent in this network (e.g. no Adam model)
            continue
        if any(x.shape[axis] != n for x, n in zip(arrs, n_loc)):
            raise CheckpointError(f"checkpoint: {full} has {[x.shape[axis] for x in arrs]} entries per rank "
                                  f"on axis {axis}, its index space '{space}' {n_loc}")
        cat = np.concatenate(arrs, axis=axis)
        if space in shared:
            check_shared_rows(full, cat, *shared[space])
        out["arrays"][full] = ("data", np.take(cat, orders[space], axis=axis))
    for kind in ("global", "max", "sum"):
        for full in pieces[0][kind]:
            vals = [q[kind][full] for q in pieces]
            if kind == "global":
                if any(not np.array_equal(np.asarray(v), np.asarray(vals[0])) for v in vals[1:]):
                    raise CheckpointError(f"checkpoint: {full} differs between ranks (internal error)")
                out[kind][full] = vals[0]
            elif kind == "max":
                out[kind][full] = max(vals)
            else:
                out[kind][full] = sum(vals)
    h_keys = [q["keys"]["h"][0] for q in pieces]
    k, base, cnt, flat = _merge_ragged([q["ring"] for q in pieces], h_keys)
    out["ring"] = {"gid": k, "base": base, "cnt": cnt, "capacity": max(q["ring"]["capacity"] for q in pieces),
                   "values": {a: np.concatenate([q["ring"]["values"][a] for q in pieces])[flat]
                              for a in pieces[0]["ring"]["values"]}}
    if "fr" in pieces[0]:
        k, base, cnt, flat = _merge_ragged([q["fr"] for q in pieces], h_keys)
        out["fr"] = {"gid": k, "base": base, "cnt": cnt, "F": max(q["fr"]["F"] for q in pieces),
                     "values": np.concatenate([q["fr"]["values"] for q in pieces])[flat]}
    sp = np.concatenate([q["spikes_in"] for q in pieces]) if pieces else np.zeros((0, 2), np.int64)
    out["spikes_in"] = np.unique(sp, axis=0) if sp.size else np.zeros((0, 2), np.int64)
    smp = [q["samples"] for q in pieces]
    out["samples"] = {"t": np.concatenate([s["t"] for s in smp]), "value": np.concatenate([s["value"] for s in smp]),
                      "slot": [np.concatenate([s["slot"][i] for s in smp]) for i in range(4)]}
    sk = np.concatenate([q["spike_rec"]["key"] for q in pieces])
    sm = np.concatenate([q["spike_rec"]["mult"] for q in pieces])
    o = np.argsort(sk, kind="stable")
    out["spike_rec"] = {"key": sk[o], "mult": sm[o]}
    wr = {n: np.concatenate([q["weight_rec"][n] for q in pieces]) for n in pieces[0]["weight_rec"]}
    o = np.argsort(wr["weight_tgt_gid"], kind="stable")     # a target's records come from one rank, in order
    out["weight_rec"] = {n: v[o] for n, v in wr.items()}
    return out


def check_shared_rows(full, values, order, first):
    """Entries of a shared space (one per rank that has them): every copy must equal the first one."""
    v = values[order]
    grp = np.cumsum(first) - 1
    rep = v[first][grp]
    same = (v == rep) | ((v != v) & (rep != rep)) if v.dtype.kind == "f" else v == rep
    if not np.all(same):
        raise CheckpointError(f"checkpoint: {full} differs between ranks for the same source row; per-row "
                              f"state must depend on the source only")


def _ds(g, name, data):
    return g.create_dataset(name, data=np.asarray(data))


def write_checkpoint(path, sim, pipeline, config):
    """Collective: gather every rank's state and write `path` atomically on rank 0 (temporary file, fsync,
    rename).  A failure on rank 0 raises CheckpointError on every rank."""
    comm = sim.comm
    piece = local_state(sim)
    pieces = comm.gather(piece, root=0)
    err = None
    if comm.rank == 0:
        try:
            merged = merge(pieces, sim)
            _write_file(path, merged, sim, pipeline, config)
        except (OSError, ValueError, TypeError, CheckpointError) as e:
            err = e if isinstance(e, CheckpointError) else CheckpointError(f"could not write checkpoint {path}: {e}")
    del pieces
    comm.check(err)
    return path


def _write_file(path, m, sim, pipeline, config):
    import h5py
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            with h5py.File(fh, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["version"] = VERSION
                cfg_json = json.dumps(config, sort_keys=True, default=str)
                f.attrs["config"] = cfg_json
                f.attrs["config_hash"] = config_hash(config)
                f.attrs["n_ranks"] = sim.comm.size
                f.attrs["t"] = int(sim.core.t)
                f.attrs["phase"] = int(pipeline["n"])
                f.attrs["n_nodes"] = int(sim.k.n_nodes)
                _write_pipeline(f.create_group("pipeline"), pipeline)
                _write_core(f.create_group("core"), m)
                g = f.create_group("sim")
                for k, v in _sim_state(sim).items():
                    _ds(g, k, v)
                g.attrs["timers"] = json.dumps(sim.timers)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        try:                       # make the rename durable too
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_pipeline(g, p):
    g.attrs["state"] = json.dumps({k: p[k] for k in ("n", "mid", "phases", "labels_of", "etas", "sent", "timers")})
    tr = g.create_group("traces")
    for name, (m, lab, y, ys) in p["traces"].items():
        t = tr.create_group(name)
        t.attrs["phase"] = int(m)
        t.attrs["label"] = lab
        _ds(t, "y", y)
        _ds(t, "ys", ys)
    wi = g.create_group("weights_initial")
    wi.attrs["present"] = bool(p["weights_initial"])
    for proj, w in p["weights_initial"].items():
        q = wi.create_group(proj)
        for k in ("source", "target", "weight"):
            _ds(q, k, w[k])
        for k in ("source_population", "target_population", "source_first_gid", "target_first_gid"):
            q.attrs[k] = w[k]


def _write_core(g, m):
    sp = g.create_group("spaces")
    for space, cols in m["spaces"].items():
        s = sp.create_group(space)
        for i, col in enumerate(cols):
            _ds(s, f"key{i}", col)
    g.attrs["ord_max"] = int(m["ord_max"])
    ar = g.create_group("arrays")
    for full, (what, v) in m["arrays"].items():
        d = _ds(ar, full, v)
        d.attrs["empty"] = what == "empty"
    for kind in ("global", "max", "sum"):
        k = g.create_group(kind)
        for full, v in m[kind].items():
            _ds(k, full, v)
    r = g.create_group("ring")
    for n in ("gid", "base", "cnt"):
        _ds(r, n, m["ring"][n])
    r.attrs["capacity"] = int(m["ring"]["capacity"])
    for a, v in m["ring"]["values"].items():
        _ds(r, a, v)
    if "fr" in m:
        r = g.create_group("fr")
        for n in ("gid", "base", "cnt", "values"):
            _ds(r, n, m["fr"][n])
        r.attrs["F"] = int(m["fr"]["F"])
    _ds(g, "spikes_in", m["spikes_in"].astype(np.int64))
    s = g.create_group("samples")
    _ds(s, "t", m["samples"]["t"])
    _ds(s, "value", m["samples"]["value"])
    for i, col in enumerate(m["samples"]["slot"]):
        _ds(s, f"slot{i}", col)
    s = g.create_group("spike_rec")
    for n, v in m["spike_rec"].items():
        _ds(s, n, v)
    s = g.create_group("weight_rec")
    for n, v in m["weight_rec"].items():
        _ds(s, n, v)


# ---------------------------------------------------------------------------------------------
# read and validate
# ---------------------------------------------------------------------------------------------
def _open(path):
    import h5py
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} is not a readable HDF5 file (truncated or corrupt?): {e}") from None
    try:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise CheckpointError(f"{path} is not an eprop-dist checkpoint (format attribute {fmt!r})")
        ver = int(f.attrs.get("version", -1))
        if ver != VERSION:
            raise CheckpointError(f"checkpoint {path} has format version {ver}; this eprop-dist reads version "
                                  f"{VERSION}")
        cfg = json.loads(f.attrs["config"])
        if config_hash(cfg) != f.attrs["config_hash"]:
            raise CheckpointError(f"checkpoint {path}: the stored config does not match its hash (corrupt file)")
    except CheckpointError:
        f.close()
        raise
    except (KeyError, ValueError, OSError, TypeError) as e:
        f.close()
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt: {e}") from None
    return f, cfg


def read_config(path):
    """The resolved config stored in a checkpoint (validated header)."""
    f, cfg = _open(path)
    f.close()
    return cfg


def load(path):
    """Read a whole checkpoint into memory (every dataset read: a truncated file fails here)."""
    f, cfg = _open(path)
    try:
        with f:
            def tree(g):
                return {k: (tree(v) if hasattr(v, "keys") else v[()]) for k, v in g.items()}
            data = {"config": cfg, "attrs": {k: f.attrs[k] for k in f.attrs}}
            data["pipeline"] = json.loads(f["pipeline"].attrs["state"])
            data["traces"] = {n: (int(t.attrs["phase"]), str(t.attrs["label"]), t["y"][()], t["ys"][()])
                              for n, t in f["pipeline/traces"].items()}
            wi = f["pipeline/weights_initial"]
            data["weights_initial"] = {p: dict({k: q[k][()] for k in q}, **{k: (q.attrs[k].item() if hasattr(q.attrs[k], "item") else q.attrs[k])
                                                                           for k in q.attrs})
                                       for p, q in wi.items()}
            core = f["core"]
            data["core"] = tree(core)
            data["core_attrs"] = {k: core.attrs[k] for k in core.attrs}
            data["empty"] = {k: bool(v.attrs["empty"]) for k, v in core["arrays"].items()}
            data["ring_capacity"] = int(core["ring"].attrs["capacity"])
            data["fr_F"] = int(core["fr"].attrs["F"]) if "fr" in core else None
            data["sim"] = tree(f["sim"])
            data["sim_timers"] = json.loads(f["sim"].attrs["timers"])
    except CheckpointError:
        raise
    except (KeyError, ValueError, OSError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt: {e}") from None
    return data


# ---------------------------------------------------------------------------------------------
# restore into a freshly built network (any rank count)
# ---------------------------------------------------------------------------------------------
def _lookup(saved_comp, local_comp, what, comm, shared=False):
    pos = np.searchsorted(saved_comp, local_comp)
    ok = (pos < saved_comp.size)
    ok[ok] = saved_comp[pos[ok]] == local_comp[ok]
    n_missing = int(local_comp.size - np.count_nonzero(ok))
    total = comm.allreduce_sum(int(local_comp.size))
    missing = comm.allreduce_sum(n_missing)
    if shared:            # entries that several ranks hold: every local one must be saved
        total = saved_comp.size
    if missing or total != saved_comp.size:
        raise CheckpointError(f"checkpoint does not fit this network: {what}: {saved_comp.size} saved, {total} in "
                              f"the network, {missing} not found in the checkpoint")
    return pos


def _set(o, a, value, full):
    cur = getattr(o, a)
    if not isinstance(cur, (int, float, bool)) and cur is not None:
        cur = np.asarray(cur)
        value = np.asarray(value)
        if value.dtype != cur.dtype:
            raise CheckpointError(f"checkpoint: {full} has dtype {value.dtype}, this build uses {cur.dtype}")
        value = np.ascontiguousarray(value)
    else:
        value = type(cur)(np.asarray(value).item()) if cur is not None else value
    setattr(o, a, value)


def restore(sim, ck):
    """Put checkpoint `ck` (from :func:`load`) into this rank's freshly built simulation (collective: the
    key checks agree across ranks)."""
    c, comm = sim.core, sim.comm
    if int(ck["attrs"]["n_nodes"]) != int(sim.k.n_nodes):
        raise CheckpointError(f"checkpoint does not fit this network: {ck['attrs']['n_nodes']} nodes saved, "
                              f"{sim.k.n_nodes} built")
    objs = kernel_objects(c)
    core = ck["core"]
    ord_max = int(ck["core_attrs"]["ord_max"])
    local = _space_keys(sim)
    pos = {}
    for space in SPACES:
        saved = core["spaces"][space]
        cols = [saved[f"key{i}"] for i in range(len(saved))]
        rad = _radices(sim, space, ord_max)
        loc = local[space]
        if space == "syn" and loc[2].size and int(loc[2].max()) > ord_max:
            raise CheckpointError("checkpoint does not fit this network: more multapses than saved")
        pos[space] = _lookup(_composite(cols, rad, space), _composite(loc, rad, space), f"{space} entries", comm,
                             shared=space in SHARED_SPACES)
    for full, v in core["arrays"].items():
        oname, a = full.split(".")
        kind = TABLE.get(oname, {}).get(a)
        if kind not in INDEXED:
            raise CheckpointError(f"checkpoint holds {full}, which this build does not keep as indexed state")
        space, axis = INDEXED[kind]
        o = objs[oname]
        cur = np.asarray(getattr(o, a))
        if ck["empty"][full]:
            if cur.shape[axis] != 0 and pos[space].size:
                raise CheckpointError(f"checkpoint does not fit this network: {full} was absent when it was written")
            continue
        if cur.shape[axis] == 0 and pos[space].size:
            raise CheckpointError(f"checkpoint does not fit this network: {full} is absent in this build")
        new = np.take(v, pos[space], axis=axis)
        if new.shape != cur.shape:
            raise CheckpointError(f"checkpoint does not fit this network: {full} has shape {v.shape} "
                                  f"(this rank needs {cur.shape})")
        _set(o, a, new, full)
    for oname, table in TABLE.items():      # every table entry of an indexed kind must be in the file
        for a, kind in table.items():
            if kind in INDEXED and f"{oname}.{a}" not in core["arrays"]:
                raise CheckpointError(f"checkpoint has no {oname}.{a}")
    for kind in ("global", "max", "sum"):
        for full, v in core[kind].items():
            oname, a = full.split(".")
            if TABLE.get(oname, {}).get(a) != kind:
                raise CheckpointError(f"checkpoint holds {full} as {kind}, which this build does not")
            if kind == "sum" and comm.rank != 0:
                v = np.zeros_like(np.asarray(v))
            _set(objs[oname], a, v, full)
    _restore_ring(sim, ck, pos["h"])
    _restore_buffers(sim, ck)
    s = ck["sim"]
    sim.gen_set_t = {int(g): int(t) for g, t in zip(s["gen_set_gid"], s["gen_set_t"])}
    sim._cleared = {int(g): int(t) for g, t in zip(s["cleared_gid"], s["cleared_t"])}
    sim._gen_dirty = False          # the generators' arrays came from the checkpoint
    sim._rg_dirty = False
    sim.timers = {k: (float(v) if comm.rank == 0 else 0.0) for k, v in ck["sim_timers"].items()}
    c.delivered = False


def _fill_ragged(shape, dtype, rows_local, base, cnt, flat_vals, modulo):
    """(n_rows, modulo, ...) array with the saved ragged rows put at key % modulo."""
    out = np.zeros(shape, dtype)
    start = np.cumsum(cnt) - cnt          # flat_vals holds the rows' segments back to back, in row order
    rr = np.repeat(rows_local, cnt)
    off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    src = np.repeat(start, cnt) + off
    out[rr, (np.repeat(base, cnt) + off) % modulo] = flat_vals[src]
    return out


def _restore_ring(sim, ck, pos_h):
    c = sim.core
    hs = c.history
    n_h = c.n_rec + c.n_out
    r = ck["core"]["ring"]
    base, cnt = r["base"][pos_h], r["cnt"][pos_h]
    need = int(cnt.max()) + c.D + int(hs.shift) + 1 if cnt.size else 1
    C = max(int(ck["ring_capacity"]), int(hs.capacity))
    while C < need:
        C *= 2
    start_all = np.cumsum(r["cnt"]) - r["cnt"]
    for a, kind in TABLE["history"].items():
        if kind != "ring":
            continue
        cur = _ring_rows(hs, a)
        vals = r[a]
        if vals.dtype != cur.dtype or vals.shape[1:] != cur.shape[2:]:
            raise CheckpointError(f"checkpoint: history.{a} has dtype/shape {vals.dtype}{vals.shape[1:]}, this build "
                                  f"{cur.dtype}{cur.shape[2:]}")
        # the local rows' segments of the saved flat values
        off = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        seg = vals[np.repeat(start_all[pos_h], cnt) + off]
        new = _fill_ragged((n_h, C) + cur.shape[2:], cur.dtype, np.arange(n_h), base, cnt, seg, C)
        setattr(hs, a, np.ascontiguousarray(new.swapaxes(0, 1)) if a in SLOT_MAJOR_RINGS else new)
    hs.capacity = C
    hs.cmask = C - 1
    if c.bsshslm:
        fr = ck["core"].get("fr")
        if fr is None:
            raise CheckpointError("checkpoint has no bsshslm firing-rate ring")
        F = max(int(ck["fr_F"]), int(hs.n_fr_intervals))
        b, n = fr["base"][pos_h], fr["cnt"][pos_h]
        st_all = np.cumsum(fr["cnt"]) - fr["cnt"]
        off = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        seg = fr["values"][np.repeat(st_all[pos_h], n) + off]
        hs.firing_rate_reg_interval = _fill_ragged((n_h, F), np.float64, np.arange(n_h), b, n, seg, F)
        hs.n_fr_intervals = F


def _grown(arr, n):
    arr = np.asarray(arr)
    return np.zeros(max(arr.shape[0], 2 * n + 1024), arr.dtype)


def _restore_buffers(sim, ck):
    c, st = sim.core, sim.st
    core = ck["core"]
    dl, rc = c.delivery, c.recording
    # spikes of the last window, for the synapses of this rank
    sp = np.asarray(core["spikes_in"], np.int64).reshape(-1, 2)
    row = np.asarray(dl.src_row_of_gid)
    gid = sp[:, 0] & GID_MASK
    keep = (gid < row.size)
    keep[keep] = row[gid[keep]] >= 0
    sp = sp[keep]
    buf = _grown(dl.spikes_in, sp.size)
    buf[: sp.size] = sp.ravel()
    dl.spikes_in = buf
    dl.n_incoming = sp.shape[0]
    # multimeter samples onto this rank's slots
    s = core["samples"]
    cols = _slot_cols(sim)
    o_max = max(int(cols[3].max()) if cols[3].size else 0, int(s["slot3"].max()) if s["slot3"].size else 0)
    N = int(sim.k.n_nodes) + 1
    rad = (max(1, int(st.mm_gids.size)), N, 64, o_max + 1)
    loc = _composite(cols, rad, "multimeter slot")
    o = np.argsort(loc, kind="stable")
    saved = _composite([s[f"slot{i}"] for i in range(4)], rad, "multimeter slot")
    p = np.searchsorted(loc[o], saved)
    ok = p < loc.size
    ok[ok] = loc[o][p[ok]] == saved[ok]
    slot = o[p[ok]].astype(np.int32)
    n = int(slot.size)
    for name, vals in (("sample_t", s["t"][ok]), ("sample_slot", slot), ("sample_value", s["value"][ok])):
        b = _grown(getattr(rc, name), n)
        b[:n] = vals
        setattr(rc, name, b)
    rc.n_samples = n
    sim.mm_store.drain(c)
    # spike records of this rank's targets
    g2t = np.asarray(st.gid2tid)
    sr = core["spike_rec"]
    k = np.asarray(sr["key"], np.int64)
    keep = g2t[k & GID_MASK] >= 0 if k.size else np.zeros(0, bool)
    n = int(np.count_nonzero(keep))
    for name, vals in (("spike_key", k[keep]), ("spike_multiplicity", np.asarray(sr["mult"])[keep])):
        b = _grown(getattr(rc, name), n)
        b[:n] = vals
        setattr(rc, name, b)
    rc.n_spikes = n
    wr = core["weight_rec"]
    tg = np.asarray(wr["weight_tgt_gid"], np.int64)
    keep = g2t[tg] >= 0 if tg.size else np.zeros(0, bool)
    n = int(np.count_nonzero(keep))
    for name in ("weight_stamp", "weight_src_gid", "weight_tgt_gid", "weight_recorder_id", "weight_value"):
        b = _grown(getattr(rc, name), n)
        b[:n] = np.asarray(wr[name])[keep]
        setattr(rc, name, b)
    rc.n_weights = n


# ---------------------------------------------------------------------------------------------
# signals and the per-phase decision
# ---------------------------------------------------------------------------------------------
class Checkpointer:
    """Owned by ``eprop-dist train``: decides at every phase end (a point where all ranks are) whether to
    write a checkpoint (every `every` phases, or because a SIGTERM/SIGINT arrived on any rank: one cheap
    collective per phase agrees on it), and writes it.  A second signal aborts at once (default action)."""

    STRETCH_STEPS = 2000        # longest stretch the core runs without returning to Python (signal latency)

    def __init__(self, comm, folder, every=0, config=None, resume=None, log=None):
        self.comm = comm
        self.folder = folder
        self.path = os.path.join(folder, FILENAME)
        self.every = int(every or 0)
        self.config = config
        self.resume = resume            # loaded checkpoint (load()) or None
        self.log = log or (lambda msg: None)
        self.signame = None
        self._old = {}

    # -- signals --
    def install(self):
        for s in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[s] = signal.signal(s, self._on_signal)
            except ValueError:          # not the main thread: no signal handling
                pass

    def uninstall(self):
        for s, h in self._old.items():
            try:
                signal.signal(s, h if h is not None else signal.SIG_DFL)
            except ValueError:
                pass
        self._old = {}

    def _on_signal(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signame is not None:
            return
        self.signame = name
        # a second SIGINT/SIGTERM ends the process at once (the default action)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)
        sys.stderr.write(f"eprop-dist: {name} received on rank {self.comm.rank}: writing a checkpoint at the next "
                         f"safe point (phase end or within {self.STRETCH_STEPS} steps), then stopping (send it again "
                         f"to abort at once)\n")
        sys.stderr.flush()

    # -- decisions --
    def phase_end(self, n, sim, pipeline_state):
        """After phase n-1 (n phases done): write a checkpoint if due; raise CheckpointStop after a signal."""
        stop = self.comm.any_true(self.signame is not None)
        due = self.every > 0 and n % self.every == 0
        if not (stop or due):
            return
        write_checkpoint(self.path, sim, pipeline_state, self.config)
        self.log(f"eprop-dist: checkpoint after phase {n} written to {self.path}")
        if stop:
            self._stop(f"after phase {n}")

    def inside_phase(self, n, sim, state_fn):
        """Between two stretches of phase n (a window boundary, all ranks here): after a signal, write a
        checkpoint that resumes inside the phase and raise CheckpointStop."""
        if self.comm.any_true(self.signame is not None):
            write_checkpoint(self.path, sim, state_fn(), self.config)
            self._stop(f"in phase {n + 1} at step {sim.t}")

    def _stop(self, where):
        names = self.comm.allgather(self.signame)
        raise CheckpointStop(next(x for x in names if x is not None), where, self.path)
