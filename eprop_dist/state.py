"""The arrays of one rank, handed to the compiled core (csrc/eprop_dist/, driver _driver.Core), and
their growth policy.

NumPy dtypes matching csrc/_typedefs.pxd: GID=int64 (gid_t), LID=int32 (lid_t), REAL=float64
(real_t), STEP=int64 (step_t).

Growth policy: buffers whose size depends on activity (histories, samples, spike and weight records,
incoming spikes) start small and double when the core returns GROW; the core stops at a step
boundary first, so growing never changes a result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _driver

GID = np.int64
LID = np.int32
REAL = np.float64
STEP = np.int64


@dataclass
class RankState:
    rank: int
    n_ranks: int
    dt: float
    D: int
    shift: int
    d_ro: int
    rec_gids: np.ndarray
    out_gids: np.ndarray
    par_gids: np.ndarray
    out_gids_global: np.ndarray
    gid2tid: np.ndarray
    kind_of: np.ndarray
    core: object = None
    ep_model_index: dict = field(default_factory=dict)
    ep_models: list = field(default_factory=list)


def _z(n, dtype=REAL):
    return np.zeros(n, dtype=dtype)


def alloc_core(st, *, n_rec, n_out, n_par, RL, n_out_global, n_src_rows, src_row, tgt_gids,
               static, eprop, ls, readout_gen, h_has, slots, spk_recorded, n_mm, any_adaptive=True,
               any_adam=True):
    """A Core (csrc/eprop_dist/_driver.pyx) with the arrays of every kernel allocated; parameter
    values are filled by Simulation.push_all, the bsshslm extras by build.py."""
    c = _driver.Core()
    c.dt = st.dt
    c.D = st.D
    c.shift = st.shift
    c.d_ro = st.d_ro
    c.n_rec, c.n_out, c.n_par = n_rec, n_out, n_par
    c.n_tgt = n_rec + n_out + n_par
    n_tgt = c.n_tgt
    # recurrent neurons: parameter and state arrays (filled by Simulation.push_nodes)
    rec = c.rec
    for name in ("model", "surrogate_gradient_function", "refractory_counts", "ignore_and_spike",
                 "refractory_input"):
        setattr(rec, name, _z(n_rec, np.int32))
    for name in ("flush_interval", "ignore_and_spike_offset", "ignore_and_spike_interval", "refractory_steps",
                 "t_last_emit", "ignore_and_spike_countdown"):
        setattr(rec, name, _z(n_rec, STEP))
    for name in ("P_v_m", "P_i_in", "v_th", "v_min", "v_reset", "I_e", "E_L", "adapt_beta", "P_adapt", "c_reg",
                 "f_target", "kappa", "kappa_reg", "surrogate_gradient_height", "surrogate_gradient_width",
                 "tau_m", "v_m", "i_in", "adaptation", "v_th_adapt", "f_av", "surrogate_gradient",
                 "refractory_input_sum"):
        setattr(rec, name, _z(n_rec))
    rec.z = _z(n_rec, np.uint8)
    out = c.out
    for name in ("P_v_m", "P_i_in", "v_min", "I_e", "E_L", "v_m", "i_in", "readout_signal", "target_signal",
                 "error_signal", "learning_window_signal"):
        setattr(out, name, _z(n_out))
    (out.target_gen, out.learning_window_gen, out.target_gen_lag, out.learning_window_gen_lag,
     out.target_weight, out.learning_window_weight) = readout_gen
    c.parrots.flush_interval = np.full(n_par, _driver.INF_STEPS, STEP)
    c.parrots.t_last_emit = _z(n_par, STEP)
    dl = c.delivery
    dl.tgt_gid = np.ascontiguousarray(tgt_gids, GID)
    rc = c.recording
    rc.spike_recorded = spk_recorded
    gn = c.generators
    gn.rate_indptr = np.zeros(1, STEP)
    gn.rate_times = _z(0, STEP)
    gn.rate_values = _z(0)
    dl.ring_length = RL
    dl.input_ring = np.zeros((n_tgt, RL))
    # histories
    hs = c.history
    n_h = n_rec + n_out
    C = 64
    hs.capacity = C
    hs.surrogate_gradient = np.zeros((n_h, C))
    hs.learning_signal = np.zeros((n_h, C))
    hs.firing_rate_reg = np.zeros((n_h, C))
    hs.valid = np.zeros((n_h, C), np.uint8)
    hs.update_count = np.zeros((n_h, C), np.int32)
    for name in ("front", "end", "n_entries", "first_update_key", "n_update_keys"):
        setattr(hs, name, _z(n_h, STEP))
    hs.has_history = h_has
    hs.isi_trace_cutoff = np.full(n_h, _driver.INF_STEPS, STEP)
    hs.cmask = C - 1
    hs.prefix = np.zeros((C, n_h, 9))          # fast path, slot-major (filled by Simulation._fast_classes)
    hs.fast_class = np.full(n_h, -1, np.int32)
    hs.fast_only = np.zeros(n_h, np.uint8)
    hs.bsshslm_settle = np.zeros(n_h, np.uint8)
    hs.class_block = np.ones(1, STEP)
    hs.class_powers = np.ones((1, 8, 65))
    dl.src_row_of_gid = src_row
    # CSRs
    s_src, s_tid, s_w, s_d = static
    dl.static_indptr = _csr_ptr(s_src, src_row, n_src_rows)
    dl.static_tgt_lid = s_tid.astype(LID)
    dl.static_weight = s_w.astype(REAL)
    dl.static_delay = s_d.astype(LID)
    e_src, e_tid, e_w, e_d, e_mod = eprop
    n_e = e_src.size
    syn = c.syn
    syn.indptr = _csr_ptr(e_src, src_row, n_src_rows)
    syn.tgt_lid = e_tid.astype(LID)
    syn.delay = e_d.astype(np.int16)
    syn.syn_model = e_mod.astype(np.uint8)
    syn.weight = e_w.astype(REAL)
    for name in ("z_bar", "e_bar", "e_bar_reg", "gradient"):
        setattr(syn, name, _z(n_e))
    syn.epsilon = _z(n_e if any_adaptive else 0)
    opt = c.optimizer
    opt.cumulative_gradient = _z(n_e)
    n_adam = n_e if any_adam else 0
    opt.m, opt.v = _z(n_adam), _z(n_adam)
    opt.beta_1_power = np.ones(n_adam)
    opt.beta_2_power = np.ones(n_adam)
    opt.eta_current = np.full(n_e, 1e-4)
    opt.optimization_step = np.ones(n_e, LID)
    for name in ("t_spike_previous", "remaining_steps_until_cutoff", "decay_steps"):
        setattr(syn, name, _z(n_e, LID))
    syn.previous_was_flush = _z(n_e, np.uint8)
    syn.z_pending = _z(n_e, np.uint64)
    # learning signals
    l_row, l_tid, l_w = ls
    ptr = np.zeros(n_out_global + 1, STEP)
    np.add.at(ptr, l_row + 1, 1)
    dl.ls_indptr = np.cumsum(ptr)
    dl.ls_tgt_lid = l_tid.astype(LID)
    dl.ls_weight = l_w.astype(REAL)
    dl.error_all = np.zeros((st.D, max(n_out_global, 0)))
    dl.error_local = np.zeros((st.D, n_out))
    gn.spike_gen_keys = _z(0, GID)
    gn.spike_gen_next = 0
    cap_out = max(1, (n_rec + n_par) * st.D)
    dl.spikes_out = _z(2 * cap_out, GID)
    dl.spikes_in = _z(2 * max(cap_out, 1024), GID)
    # recorders
    sl_mm, sl_tid, sl_field, sl_ptr, sl_order = slots
    rc.multimeter_start = _z(n_mm, LID)
    rc.multimeter_stop = _z(n_mm, LID)
    rc.multimeter_interval = np.ones(n_mm, LID)
    rc.slot_multimeter, rc.slot_tgt_lid, rc.slot_field = sl_mm, sl_tid, sl_field
    rc.slot_indptr, rc.slot_order = sl_ptr, sl_order
    cap = max(1024, 4 * sl_mm.size * st.D)
    rc.sample_t = _z(cap, STEP)
    rc.sample_slot = _z(cap, LID)
    rc.sample_value = _z(cap)
    cap = max(1024, 4 * n_tgt * st.D)
    rc.spike_key = _z(cap, GID)
    rc.spike_multiplicity = _z(cap, LID)
    cap = 1024
    rc.weight_stamp, rc.weight_src_gid, rc.weight_tgt_gid = _z(cap, STEP), _z(cap, GID), _z(cap, GID)
    rc.weight_recorder_id = _z(cap, LID)
    rc.weight_value = _z(cap)
    rc.weight_recorded = _z(0, np.uint8)
    return c


def _csr_ptr(src, src_row, n_rows):
    ptr = np.zeros(n_rows + 1, STEP)
    if src.size:
        np.add.at(ptr, src_row[src].astype(np.int64) + 1, 1)
    return np.cumsum(ptr)


def _grow1(arr, n_min):
    new = np.zeros(max(2 * arr.shape[0], n_min), dtype=arr.dtype)
    new[: arr.shape[0]] = arr
    return new


def grow(c, what: int):
    """Enlarge the buffers named in the bit mask `what` (Core.grow_what)."""
    R = _driver.GROW_REASONS
    rc, dl = c.recording, c.delivery
    if what & R["history"]:
        grow_history(c)
    if what & R["samples"]:
        need = rc.n_samples + 4 * rc.slot_multimeter.shape[0] * c.D + 1
        for name in ("sample_t", "sample_slot", "sample_value"):
            setattr(rc, name, _grow1(np.asarray(getattr(rc, name)), need))
    if what & R["spikerec"]:
        need = rc.n_spikes + 4 * c.n_tgt * c.D + 1
        rc.spike_key = _grow1(np.asarray(rc.spike_key), need)
        rc.spike_multiplicity = _grow1(np.asarray(rc.spike_multiplicity), need)
    if what & R["weightrec"]:
        need = 2 * rc.weight_value.shape[0]
        for name in ("weight_stamp", "weight_src_gid", "weight_tgt_gid", "weight_recorder_id", "weight_value"):
            setattr(rc, name, _grow1(np.asarray(getattr(rc, name)), need))
    if what & R["incoming"]:
        dl.spikes_in = _grow1(np.asarray(dl.spikes_in), 2 * (dl.n_incoming + c.generators.spike_gen_keys.shape[0]) + 2)


def grow_history(c, C_new=None):
    """Double the history ring capacity C (a power of two), re-laying every live key k at slot
    k % C_new."""
    hs = c.history
    C = hs.capacity
    if C_new is None:
        C_new = 2 * C
    front = np.asarray(hs.front)
    ulo = np.asarray(hs.first_update_key)
    # the fast path reads the prefix row of entry (window start - 1) >= min(front, ulo) - shift
    base = np.maximum(np.minimum(front, ulo) - hs.shift, 0)
    old = {name: np.asarray(getattr(hs, name)) for name in ("surrogate_gradient", "learning_signal",
                                                            "firing_rate_reg", "valid", "update_count",
                                                            "prefix")}
    n_h = old["surrogate_gradient"].shape[0]
    new = {name: np.zeros((n_h, C_new) + a.shape[2:], dtype=a.dtype) for name, a in old.items()
           if name != "prefix"}
    new["prefix"] = np.zeros((C_new,) + old["prefix"].shape[1:])      # slot-major (C, n_h, 9)
    end = np.asarray(hs.end)
    offs = np.arange(C, dtype=np.int64)
    chunk = max(1, (1 << 22) // C)           # rows per pass: a few 10 MB of index arrays at most
    for r0 in range(0, n_h, chunk):
        r1 = min(n_h, r0 + chunk)
        keys = base[r0:r1, None] + offs[None, :]
        live = keys <= end[r0:r1, None]      # entries < end, update counters <= end
        rr = np.broadcast_to(np.arange(r0, r1)[:, None], keys.shape)[live]
        k = keys[live]
        for name in old:
            if name == "prefix":
                new[name][k % C_new, rr] = old[name][k % C, rr]
            else:
                new[name][rr, k % C_new] = old[name][rr, k % C]
    for name, a in new.items():
        setattr(hs, name, a)
    hs.capacity = C_new
    hs.cmask = C_new - 1
    if c.bsshslm:   # firing-rate regulariser ring, by interval index q (alive: the last n_fr_intervals)
        T = c.update_interval
        old_fr, F = np.asarray(hs.firing_rate_reg_interval), hs.n_fr_intervals
        F_new = max(2 * F, C_new // T + 8)
        new_fr = np.zeros((old_fr.shape[0], F_new))
        q_now = max(0, (c.t - 2) // T + 1)
        for q in range(max(0, q_now - F + 1), q_now + 1):
            new_fr[:, q % F_new] = old_fr[:, q % F]
        hs.firing_rate_reg_interval = new_fr
        hs.n_fr_intervals = F_new
