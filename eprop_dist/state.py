"""The arrays of one rank, handed to the compiled core (csrc/core.pyx), and their growth policy.

NumPy dtypes matching csrc/_typedefs.pxd: GID=int64 (gid_t), LID=int32 (lid_t), REAL=float64
(real_t), STEP=int64 (step_t).

Growth policy: buffers whose size depends on activity (histories, samples, spike and weight records,
incoming spikes) start small and double when the core returns GROW; the core stops at a step
boundary first, so growing never changes a result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _core

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
    c = _core.Core()
    c.dt = st.dt
    c.D = st.D
    c.shift = st.shift
    c.d_ro = st.d_ro
    c.RL = RL
    c.n_rec, c.n_out, c.n_par = n_rec, n_out, n_par
    c.n_tgt = n_rec + n_out + n_par
    n_tgt = c.n_tgt
    # recurrent parameter and state arrays (filled by Simulation.push_all)
    for name in ("rec_model", "rec_sg", "rec_R", "rec_ias", "rec_refr_input"):
        setattr(c, name, _z(n_rec, np.int32))
    for name in ("rec_flush", "rec_ias_offset", "rec_ias_interval", "rec_r", "rec_last", "rec_iasc"):
        setattr(c, name, _z(n_rec, STEP))
    for name in ("rec_Pv", "rec_Pi", "rec_Vth", "rec_Vmin", "rec_Vreset", "rec_Ie", "rec_EL", "rec_beta",
                 "rec_rho", "rec_creg", "rec_ftarget", "rec_kappa", "rec_kreg", "rec_sgh", "rec_sgw",
                 "rec_tau", "rec_v", "rec_i", "rec_a", "rec_A", "rec_fav", "rec_psi", "rec_b"):
        setattr(c, name, _z(n_rec))
    c.rec_z = _z(n_rec, np.uint8)
    for name in ("out_Pv", "out_Pi", "out_Vmin", "out_Ie", "out_EL", "out_v", "out_i", "out_y", "out_ystar",
                 "out_err", "out_lw"):
        setattr(c, name, _z(n_out))
    (c.out_tgen, c.out_lwgen, c.out_tlag, c.out_lwlag, c.out_tw, c.out_lww) = readout_gen
    c.par_flush = np.full(n_par, _core.INF_STEPS, STEP)
    c.par_last = _z(n_par, STEP)
    c.tgt_gid = np.ascontiguousarray(tgt_gids, GID)
    c.spk_recorded = spk_recorded
    c.rg_indptr = np.zeros(1, STEP)
    c.rg_times = _z(0, STEP)
    c.rg_values = _z(0)
    c.ring = np.zeros((n_tgt, RL))
    # histories
    n_h = n_rec + n_out
    C = 64
    c.C = C
    c.h_psi = np.zeros((n_h, C))
    c.h_L = np.zeros((n_h, C))
    c.h_F = np.zeros((n_h, C))
    c.h_valid = np.zeros((n_h, C), np.uint8)
    c.h_upd = np.zeros((n_h, C), np.int32)
    for name in ("h_front", "h_end", "h_count", "h_ulo", "h_nupd"):
        setattr(c, name, _z(n_h, STEP))
    c.h_has = h_has
    c.h_cut = np.full(n_h, _core.INF_STEPS, STEP)
    c.src_row = src_row
    # CSRs
    s_src, s_tid, s_w, s_d = static
    c.st_ptr = _csr_ptr(s_src, src_row, n_src_rows)
    c.st_tgt = s_tid.astype(LID)
    c.st_w = s_w.astype(REAL)
    c.st_delay = s_d.astype(LID)
    e_src, e_tid, e_w, e_d, e_mod = eprop
    n_e = e_src.size
    c.ep_ptr = _csr_ptr(e_src, src_row, n_src_rows)
    c.ep_tgt = e_tid.astype(LID)
    c.ep_delay = e_d.astype(np.int16)
    c.ep_model = e_mod.astype(np.uint8)
    c.ep_w = e_w.astype(REAL)
    for name in ("ep_zbar", "ep_ebar", "ep_ereg", "ep_G", "ep_cum"):
        setattr(c, name, _z(n_e))
    c.ep_eps = _z(n_e if any_adaptive else 0)
    n_adam = n_e if any_adam else 0
    c.ep_m, c.ep_v = _z(n_adam), _z(n_adam)
    c.ep_b1p = np.ones(n_adam)
    c.ep_b2p = np.ones(n_adam)
    c.ep_eta = np.full(n_e, 1e-4)
    c.ep_ostep = np.ones(n_e, LID)
    for name in ("ep_tprev", "ep_rem", "ep_decay"):
        setattr(c, name, _z(n_e, LID))
    c.ep_pflush = _z(n_e, np.uint8)
    c.ep_zpend = _z(n_e, np.uint64)
    # learning signals
    l_row, l_tid, l_w = ls
    ptr = np.zeros(n_out_global + 1, STEP)
    np.add.at(ptr, l_row + 1, 1)
    c.ls_ptr = np.cumsum(ptr)
    c.ls_tgt = l_tid.astype(LID)
    c.ls_w = l_w.astype(REAL)
    c.err_all = np.zeros((st.D, max(n_out_global, 0)))
    c.err_loc = np.zeros((st.D, n_out))
    c.gen_keys = _z(0, GID)
    c.gen_pos = 0
    cap_out = max(1, (n_rec + n_par) * st.D)
    c.out_buf = _z(2 * cap_out, GID)
    c.in_buf = _z(2 * max(cap_out, 1024), GID)
    # recorders
    sl_mm, sl_tid, sl_field, sl_ptr, sl_order = slots
    c.mm_start = _z(n_mm, LID)
    c.mm_stop = _z(n_mm, LID)
    c.mm_interval = np.ones(n_mm, LID)
    c.sl_mm, c.sl_tid, c.sl_field, c.sl_ptr, c.sl_order = sl_mm, sl_tid, sl_field, sl_ptr, sl_order
    cap = max(1024, 4 * sl_mm.size * st.D)
    c.smp_t = _z(cap, STEP)
    c.smp_slot = _z(cap, LID)
    c.smp_v = _z(cap)
    cap = max(1024, 4 * n_tgt * st.D)
    c.sr_key = _z(cap, GID)
    c.sr_mult = _z(cap, LID)
    cap = 1024
    c.wr_stamp, c.wr_src, c.wr_tgt = _z(cap, STEP), _z(cap, GID), _z(cap, GID)
    c.wr_id = _z(cap, LID)
    c.wr_w = _z(cap)
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
    R = _core.GROW_REASONS
    if what & R["history"]:
        grow_history(c)
    if what & R["samples"]:
        need = c.n_samples + 4 * c.sl_mm.shape[0] * c.D + 1
        c.smp_t = _grow1(np.asarray(c.smp_t), need)
        c.smp_slot = _grow1(np.asarray(c.smp_slot), need)
        c.smp_v = _grow1(np.asarray(c.smp_v), need)
    if what & R["spikerec"]:
        need = c.n_spikerec + 4 * c.n_tgt * c.D + 1
        c.sr_key = _grow1(np.asarray(c.sr_key), need)
        c.sr_mult = _grow1(np.asarray(c.sr_mult), need)
    if what & R["weightrec"]:
        need = 2 * c.wr_w.shape[0]
        for name in ("wr_stamp", "wr_src", "wr_tgt", "wr_id", "wr_w"):
            setattr(c, name, _grow1(np.asarray(getattr(c, name)), need))
    if what & R["incoming"]:
        c.in_buf = _grow1(np.asarray(c.in_buf), 2 * (c.n_incoming + c.gen_keys.shape[0]) + 2)


def grow_history(c, C_new=None):
    """Double the history ring capacity C, re-laying every live key k at slot k % C_new."""
    C = c.C
    if C_new is None:
        C_new = 2 * C
    front = np.asarray(c.h_front)
    ulo = np.asarray(c.h_ulo)
    base = np.minimum(front, ulo)
    old = {name: np.asarray(getattr(c, name)) for name in ("h_psi", "h_L", "h_F", "h_valid", "h_upd")}
    n_h = old["h_psi"].shape[0]
    new = {name: np.zeros((n_h, C_new), dtype=a.dtype) for name, a in old.items()}
    rows = np.arange(n_h)
    end = np.asarray(c.h_end)
    for off in range(C):
        keys = base + off
        live = rows[keys <= end]          # entries < h_end, update counters <= h_end
        k = keys[live]
        for name in old:
            new[name][live, k % C_new] = old[name][live, k % C]
    for name, a in new.items():
        setattr(c, name, a)
    c.C = C_new
    if c.bss:   # firing-rate regulariser ring, by interval index q (alive: the last FRC intervals)
        old_fr, F = np.asarray(c.h_fr), c.FRC
        F_new = max(2 * F, C_new // c.T_int + 8)
        new_fr = np.zeros((old_fr.shape[0], F_new))
        q_now = max(0, (c.t - 2) // c.T_int + 1)
        for q in range(max(0, q_now - F + 1), q_now + 1):
            new_fr[:, q % F_new] = old_fr[:, q % F]
        c.h_fr = new_fr
        c.FRC = F_new
