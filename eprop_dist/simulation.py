"""The window loop (DESIGN 1) around the compiled core, plus parameter pushes and result gathering.

Serial runs stay inside ``Core.run`` for a whole Simulate call (no per-window Python); under MPI
the core returns after every window of D steps and :meth:`Simulation._exchange` gathers the
window's spikes and readout errors with buffer-based Allgatherv.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import _core
from . import models as M
from .build import REC_CODE, SG_CODE, base_model, build, steps_or_inf
from .comm import as_comm
from .errors import BadProperty, EpropError, KernelException
from .state import GID, LID, REAL, STEP, grow

ST = _core.STATUS


def c_exp(x):
    """exp with the C library (NEST's std::exp); np.exp differs in the last bit for some inputs."""
    x = np.ascontiguousarray(x, dtype=REAL)
    out = np.empty_like(x)
    _core.c_exp(x.ravel(), out.ravel())
    return out
INT32_MAX = 2**31 - 1


class Simulation:
    def __init__(self, kernel, comm=None):
        t0 = time.perf_counter()
        self.k = kernel
        self.comm = as_comm(comm)
        err = None
        try:
            self.st = build(kernel, self.comm)
        except EpropError as e:      # rank-local validation: fail on every rank, never hang
            err = e
        self.comm.check(err)
        self.core = self.st.core
        self.D = self.st.D
        self.dt = kernel.dt
        self.gen_set_t = {}                       # spike_generator gid -> step its times were set
        self._gen_dirty = True
        self._rg_dirty = True
        for pop in kernel.populations:
            self.push_nodes(pop, np.arange(pop.n), {}, None, initial=True)
        self.push_optimizers()
        self.timers = {"build": time.perf_counter() - t0, "update": 0.0, "deliver": 0.0, "eprop": 0.0,
                       "communicate": 0.0, "record": 0.0}
        self._prep_exchange()
        self._cleared = {}                        # recorder gid -> events before this iteration dropped

    @property
    def t(self):
        return self.core.t

    # ---- parameters -> core ------------------------------------------------------------------
    def push_nodes(self, pop, pos, params, old_EL, initial=False):
        """Copy (changed) node parameters of population `pop` at positions `pos` into the core."""
        c, st, dt = self.core, self.st, self.dt
        pos = np.asarray(pos)
        gids = pop.first + pos
        if pop.kind == "spike_generator":
            if "spike_times" in params or initial:
                for g in gids:
                    self.gen_set_t[int(g)] = 0 if initial else self.core.t
                self._gen_dirty = True
            return
        if pop.kind == "step_rate_generator":
            self._rg_dirty = True
            return
        if pop.kind not in ("rec", "readout", "parrot"):
            return
        tid = st.gid2tid[gids]
        loc = tid >= 0
        tid, pos = tid[loc], pos[loc]
        if old_EL is not None:
            old_EL = np.asarray(old_EL)[loc]
        if tid.size == 0:
            return
        P = {k: (v[pos] if isinstance(v, np.ndarray) else [v[i] for i in pos]) for k, v in pop.params.items()}
        if pop.kind == "parrot":
            np.asarray(c.par_flush)[tid - c.n_rec - c.n_out] = steps_or_inf(P["flush_event_send_interval"], dt)
            return
        EL = P["E_L"]
        Pv = c_exp(-dt / P["tau_m"])
        Pi = P["tau_m"] / P["C_m"] * (1.0 - Pv)
        if pop.kind == "readout":
            j = tid - c.n_rec
            arr = lambda name: np.asarray(getattr(c, name))  # noqa: E731
            if "regular_spike_arrival" in P:        # bsshslm readout
                arr("out_Pz")[j] = np.where(P["regular_spike_arrival"], 1.0, 1.0 - Pv)
                arr("out_ce")[j] = [M.LOSSES.index(x) for x in P["loss"]]
            arr("out_Pv")[j] = Pv
            arr("out_Pi")[j] = Pi
            arr("out_Vmin")[j] = P["V_min"] - EL
            arr("out_Ie")[j] = P["I_e"]
            arr("out_EL")[j] = EL
            self._set_state(arr("out_v"), j, P, params, old_EL, EL, initial)
            if "eprop_isi_trace_cutoff" in P:
                np.asarray(c.h_cut)[tid] = steps_or_inf(P["eprop_isi_trace_cutoff"], dt)
            return
        # recurrent
        model = base_model(self.k, pop.model)
        j = tid
        a = lambda name: np.asarray(getattr(c, name))  # noqa: E731
        a("rec_model")[j] = REC_CODE[model]
        a("rec_sg")[j] = [SG_CODE[s] for s in P["surrogate_gradient_function"]]
        a("rec_R")[j] = np.rint(P["t_ref"] / dt)
        a("rec_ias")[j] = P.get("ignore_and_spike", False)
        a("rec_refr_input")[j] = P.get("refractory_input", False)
        a("rec_flush")[j] = steps_or_inf(P["flush_event_send_interval"], dt)
        a("rec_Pv")[j] = Pv
        a("rec_Pi")[j] = Pi
        a("rec_Vth")[j] = P["V_th"] - EL
        a("rec_Vmin")[j] = P["V_min"] - EL
        a("rec_Vreset")[j] = P["V_reset"] - EL if "V_reset" in P else 0.0
        a("rec_Ie")[j] = P["I_e"]
        a("rec_EL")[j] = EL
        adapt = "adapt_beta" in P
        a("rec_beta")[j] = P["adapt_beta"] if adapt else 0.0
        a("rec_rho")[j] = c_exp(-dt / P["adapt_tau"]) if adapt else 0.0
        a("rec_creg")[j] = P["c_reg"]
        a("rec_ftarget")[j] = P["f_target"] / 1000.0
        a("rec_kappa")[j] = P.get("kappa", 0.0)
        a("rec_kreg")[j] = P.get("kappa_reg", 0.0)
        a("rec_sgh")[j] = P["surrogate_gradient_height"]
        a("rec_sgw")[j] = P["surrogate_gradient_width"]
        a("rec_tau")[j] = P["tau_m"]
        if "eprop_isi_trace_cutoff" in P:
            np.asarray(c.h_cut)[tid] = steps_or_inf(P["eprop_isi_trace_cutoff"], dt)
        if "regular_spike_arrival" in P:        # bsshslm: P_z_in
            a("rec_Pz")[j] = np.where(P["regular_spike_arrival"], 1.0, 1.0 - Pv)
        self._set_state(a("rec_v"), j, P, params, old_EL, EL, initial)
        if "ignore_and_spike" in P and (initial or "ignore_and_spike_offset" in params
                                        or "ignore_and_spike_interval" in params):
            a("rec_ias_offset")[j] = np.rint(P["ignore_and_spike_offset"] / dt)
            a("rec_ias_interval")[j] = np.rint(P["ignore_and_spike_interval"] / dt)
            a("rec_iasc")[j] = np.rint(P["ignore_and_spike_offset"] / dt)
        if adapt and (initial or "adaptation" in params):
            a("rec_a")[j] = P["adaptation"]
        a("rec_A")[j] = a("rec_Vth")[j] + a("rec_beta")[j] * a("rec_a")[j]

    @staticmethod
    def _set_state(v, j, P, params, old_EL, EL, initial):
        if initial or "V_m" in params:
            v[j] = P["V_m"] - EL
        elif old_EL is not None and "E_L" in params:
            v[j] = v[j] + old_EL - EL

    def push_optimizers(self):
        c, st = self.core, self.st
        n = len(st.ep_models)
        arrs = {"opt_type": np.zeros(n, LID), "opt_each": np.zeros(n, LID), "opt_wrec": np.full(n, -1, LID),
                "opt_avg": np.zeros(n, LID),
                "opt_batch": np.ones(n, STEP), "opt_etacount": np.zeros(n, STEP), "opt_eta": np.zeros(n),
                "opt_wmin": np.zeros(n), "opt_wmax": np.zeros(n), "opt_b1": np.zeros(n), "opt_b2": np.zeros(n),
                "opt_epsv": np.zeros(n), "opt_eta1": np.zeros(n)}
        wr_gids = self._wr_gids()
        for i, m in enumerate(st.ep_models):
            com = self.k.syn_common[m]
            o = com["optimizer"]
            arrs["opt_type"][i] = M.OPTIMIZER_TYPES.index(o["type"])
            arrs["opt_each"][i] = bool(o["optimize_each_step"])
            arrs["opt_avg"][i] = bool(com.get("average_gradient", False))
            arrs["opt_batch"][i] = int(o["batch_size"])
            arrs["opt_etacount"][i] = com["eta_change_count"]
            arrs["opt_eta"][i] = o["eta"]
            arrs["opt_eta1"][i] = com["eta_first_change"]
            arrs["opt_wmin"][i] = o["Wmin"]
            arrs["opt_wmax"][i] = o["Wmax"]
            arrs["opt_b1"][i] = o["beta_1"]
            arrs["opt_b2"][i] = o["beta_2"]
            arrs["opt_epsv"][i] = o["epsilon"]
            if com["weight_recorder"] is not None:
                arrs["opt_wrec"][i] = int(np.searchsorted(wr_gids, com["weight_recorder"]))
        for k, v in arrs.items():
            setattr(c, k, v)
        c.any_wrec = bool(np.any(arrs["opt_wrec"] >= 0))

    def _rate_schedule_from(self, g, now, t, v):
        """NEST's step_rate_generator when its amplitudes are set after `now` steps were simulated:
        the amplitude it holds stays until the first new amplitude time after `now`; new times at or
        before `now` are skipped (NEST's update only looks for t+1 == time)."""
        c = self.core
        lo, hi = int(c.rg_indptr[g]), int(c.rg_indptr[g + 1])
        old_t = np.asarray(c.rg_times[lo:hi])
        k = int(np.searchsorted(old_t, now, side="right"))      # old amplitude times <= now
        held = float(c.rg_values[lo + k - 1]) if k else 0.0
        keep = t > now
        return (np.concatenate([np.array([now], np.int64), t[keep]]),
                np.concatenate([np.array([held]), v[keep]]))

    def _wr_gids(self):
        return np.array([g for p in self.k.populations if p.kind == "weight_recorder"
                         for g in range(p.first, p.first + p.n)], dtype=GID)

    def _refresh_devices(self):
        c, dt = self.core, self.dt
        pops = self.k.populations
        if self._gen_dirty:
            keys = []
            lo_all = c.t - (self.D if c.t > 0 else 0)   # stamps <= lo_all were already delivered
            for p in pops:
                if p.kind != "spike_generator":
                    continue
                for i in range(p.n):
                    g = p.first + i
                    s = np.rint(np.asarray(p.params["spike_times"][i], float) / dt).astype(np.int64)
                    lo = max(lo_all, self.gen_set_t.get(g, 0))
                    s = s[s > lo]
                    keys.append(_core.spike_key(s, g, device=True))
            c.gen_keys = np.sort(np.concatenate(keys)) if keys else np.zeros(0, GID)
            c.gen_pos = 0
            self._gen_dirty = False
        if self._rg_dirty:
            ptr, times, vals = [0], [], []
            now = int(c.t)
            for p in pops:
                if p.kind != "step_rate_generator":
                    continue
                for i in range(p.n):
                    t = np.rint(np.asarray(p.params["amplitude_times"][i], float) / dt).astype(np.int64)
                    v = np.asarray(p.params["amplitude_values"][i], float)
                    if now > 0:
                        t, v = self._rate_schedule_from(len(times), now, t, v)
                    times.append(t)
                    vals.append(v)
                    ptr.append(ptr[-1] + t.size)
            c.rg_indptr = np.asarray(ptr, STEP)
            c.rg_times = np.concatenate(times).astype(STEP) if times else np.zeros(0, STEP)
            c.rg_values = np.concatenate(vals).astype(REAL) if vals else np.zeros(0)
            self._rg_dirty = False
        pg = self.st.pg_gids
        if pg.size:
            lam, start, stop = np.zeros(pg.size), np.zeros(pg.size, STEP), np.zeros(pg.size, STEP)
            for i, g in enumerate(pg):
                p = self.k._pop_of([g])[0]
                q = g - p.first
                lam[i] = float(p.params["rate"][q]) * dt / 1000.0
                start[i] = int(math.floor(float(p.params["start"][q]) / dt + 1e-9))
                sp = float(p.params["stop"][q])
                stop[i] = _core.INF_STEPS if math.isinf(sp) else int(math.floor(sp / dt + 1e-9))
            c.pg_lambda, c.pg_start, c.pg_stop = lam, start, stop
        mm = self.st.mm_gids
        if mm.size:
            start = np.zeros(mm.size, LID)
            stop = np.zeros(mm.size, LID)
            interval = np.ones(mm.size, LID)
            for i, g in enumerate(mm):
                p = self.k._pop_of([g])[0]
                q = g - p.first
                start[i] = self.k.ms_to_steps(float(p.params["start"][q]), "multimeter: start")
                sp = float(p.params["stop"][q])
                stop[i] = INT32_MAX if math.isinf(sp) else self.k.ms_to_steps(sp, "multimeter: stop")
                interval[i] = self.k.ms_to_steps(float(p.params["interval"][q]), "multimeter: interval", 1)
            c.mm_start, c.mm_stop, c.mm_interval = start, stop, interval

    # ---- the loop ------------------------------------------------------------------------------
    def simulate(self, steps):
        if steps % self.D:
            raise BadProperty(f"Simulate: {steps} steps is not a multiple of the communication window "
                              f"D = {self.D} steps (the minimum delay)")
        self._refresh_devices()
        c = self.core
        t_stop = c.t + steps
        serial = self.comm.size == 1
        d0, e0, u0 = c.t_deliver, c.t_eprop, c.t_update
        while True:
            st = c.run(t_stop, serial)
            if st == ST["DONE"]:
                break
            if st == ST["GROW"]:
                grow(c, c.grow_what)
            elif st == ST["EXCHANGE"]:
                t0 = time.perf_counter()
                self._exchange()
                self.timers["communicate"] += time.perf_counter() - t0
            elif st == ST["ERR_HISTORY"]:
                raise KernelException(f"Expected e-prop history entry at t={c.err_t} of node "
                                      f"{int(np.asarray(c.tgt_gid)[c.err_h])} (history was pruned too early)")
            else:  # pragma: no cover
                raise KernelException(f"core returned unknown status {st}")
        self.timers["deliver"] += c.t_deliver - d0 - (c.t_eprop - e0)
        self.timers["eprop"] += c.t_eprop - e0
        self.timers["update"] += c.t_update - u0

    def _prep_exchange(self):
        """Plan the per-window exchange.  Spikes and readout errors travel in one int64 message per
        rank (errors as float64 bit patterns after the spike pairs), so a window costs one count
        exchange and one variable-size collective:
          allgather: every rank receives every spike (Allgather + Allgatherv);
          alltoall:  a spike goes only to the ranks with synapses from its source (Alltoall +
                     Alltoallv); errors go to every rank.
        benchmarks/scaling.py compares both (NOTES.md)."""
        st = self.st
        n = self.comm.size
        self.exchange = self.k.status.get("exchange", "alltoall")
        self._counts = np.zeros(n, np.int64)
        glob = st.out_gids_global
        owner = glob % n
        self._bss = bool(self.core.bss)
        per = 2 if self._bss else 1        # bsshslm: errors and softmax inputs u
        self._n_err = np.array([np.count_nonzero(owner == r) * self.D * per for r in range(n)], np.int64)
        # global readout index of the errors received from rank r (readouts with gid % n == r)
        self._err_perm = np.concatenate([np.nonzero(owner == r)[0] for r in range(n)]) if glob.size \
            else np.zeros(0, int)
        self._recv = np.zeros(1024, GID)
        if self.exchange == "alltoall" and n > 1:
            # which of my neurons does each rank need?  (set-up only: pickled alltoall)
            srcs = st.sources[st.kind_of[st.sources] > 0]          # neuron sources with local synapses
            want = self.comm.alltoall([srcs[srcs % n == r] for r in range(n)])
            self._need = np.zeros((n, st.gid2tid.size), bool)       # need[r, gid]
            for r, g in enumerate(want):
                self._need[r, g] = True

    def _grow_recv(self, m):
        if m + 2 > self._recv.size:
            self._recv = np.zeros(2 * m + 1024, GID)
        return self._recv

    def _exchange(self):
        """Window end under MPI: all spikes for local synapses -> in_buf; all readout errors -> err_all."""
        c, comm, n = self.core, self.comm, self.comm.size
        spikes = np.asarray(c.out_buf)[: 2 * c.n_outgoing]
        err = np.ascontiguousarray(np.asarray(c.err_loc).T).ravel()              # (n_out_local, D)
        if self._bss:
            err = np.concatenate([err, np.ascontiguousarray(np.asarray(c.u_loc).T).ravel()])
        err = err.view(GID)
        if self.exchange == "alltoall":
            gid = spikes[0::2] & 0x7FFFFFFF
            parts, counts = [], np.zeros(n, np.int64)
            for r in range(n):
                sel = np.repeat(self._need[r, gid], 2)
                parts.append(spikes[sel])
                parts.append(err)
                counts[r] = parts[-2].size + err.size
            recv, counts = comm.alltoallv(np.concatenate(parts), counts, self._grow_recv)
        else:
            comm.allgather_counts(spikes.size + err.size, self._counts)
            counts = self._counts
            recv = self._grow_recv(int(counts.sum()))
            comm.allgatherv_known(np.concatenate([spikes, err]), recv, counts)
        # split: per rank [spike pairs ..., errors (n_err[r])]
        n_spk = counts - self._n_err
        total = int(n_spk.sum())
        if total + 2 > np.asarray(c.in_buf).shape[0]:
            c.in_buf = np.zeros(2 * total + 1024, GID)
        in_buf = np.asarray(c.in_buf)
        pos, w = 0, 0
        errs = []
        for r in range(n):
            k = int(n_spk[r])
            in_buf[w:w + k] = recv[pos:pos + k]
            w += k
            errs.append(recv[pos + k:pos + counts[r]])
            pos += int(counts[r])
        c.n_incoming = total // 2
        c.n_outgoing = 0
        if self._err_perm.size:
            if self._bss:
                halves = [e.view(REAL).reshape(2, -1, self.D) for e in errs]
                got = np.concatenate([h[0] for h in halves])
                u = np.concatenate([h[1] for h in halves])
                np.asarray(c.u_all)[self._err_perm] = u[:, -1]
            else:
                got = np.concatenate(errs).view(REAL).reshape(-1, self.D)   # readouts in rank order
            np.asarray(c.err_all)[:, self._err_perm] = got.T

    # ---- results -------------------------------------------------------------------------------
    def _visible_t(self):
        """Iterations whose samples are collected (NEST: the last window is not, until next Simulate)."""
        c = self.core
        return c.t - self.D if (not c.delivered and c.t > 0) else c.t

    def clear_events(self, gids):
        """NEST's ``n_events = 0``: forget the events collected so far (later ones are kept)."""
        for g in np.atleast_1d(gids):
            self._cleared[int(g)] = self._visible_t()

    def events(self, gid):
        pop = self.k._pop_of([gid])[0]
        c = self.core
        t0 = time.perf_counter()
        if pop.kind == "multimeter":
            ev = self._mm_events(gid, pop)
        elif pop.kind == "spike_recorder":
            ev = self._sr_events(gid, pop)
        else:
            ev = self._wr_events(gid)
        cut = self._cleared.get(int(gid))
        if cut is not None:      # times are (iteration + 1) * dt for samples, stamp * dt for spikes
            keep = ev["times"] > cut * self.dt + 1e-9 * self.dt
            ev = {key: val[keep] for key, val in ev.items()}
        self.timers["record"] += time.perf_counter() - t0
        return ev

    def _gather(self, arrays):
        parts = self.comm.allgather(arrays)
        return [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]

    def _mm_events(self, gid, pop):
        c, st = self.core, self.st
        rf = list(pop.params["record_from"][gid - pop.first])
        n = c.n_samples
        t = np.asarray(c.smp_t)[:n]
        slot = np.asarray(c.smp_slot)[:n]
        v = np.asarray(c.smp_v)[:n]
        m_idx = int(np.searchsorted(st.mm_gids, gid)) if st.mm_gids.size else -1
        keep = (t < self._visible_t())
        if m_idx >= 0 and st.sl_mm.size:
            keep &= st.sl_mm[slot] == m_idx
        else:
            keep &= False
        t, slot, v = t[keep], slot[keep], v[keep]
        sender = np.asarray(c.tgt_gid)[st.sl_tid[slot]] if slot.size else np.zeros(0, GID)
        field = st.sl_field[slot] if slot.size else np.zeros(0, LID)
        t, sender, field, v = self._gather([t, sender, field, v])
        ev = {}
        # one event per (time, sender), ordered by time then sender
        key = t * (self.k.n_nodes + 1) + sender
        uk, inv = np.unique(key, return_inverse=True)
        ev["times"] = (uk // (self.k.n_nodes + 1) + 1) * self.dt
        ev["senders"] = uk % (self.k.n_nodes + 1)
        for r in rf:
            col = np.full(uk.size, np.nan)
            sel = field == M.RECORDABLE_FIELDS[r]
            col[inv[sel]] = v[sel]
            ev[r] = col
        return ev

    def _sr_events(self, gid, pop):
        c, st = self.core, self.st
        n = c.n_spikerec
        key = np.asarray(c.sr_key)[:n]
        mult = np.asarray(c.sr_mult)[:n]
        stamp, sender = _core.key_to_stamp_gid(key)
        srcs = np.array(sorted(st.sr_sources.get(int(gid), ())), dtype=GID)
        keep = (stamp <= self._visible_t()) & np.isin(sender, srcs)
        p = pop.params
        start = float(p["start"][gid - pop.first])
        stop = float(p["stop"][gid - pop.first])
        keep &= (stamp * self.dt > start) & (stamp * self.dt <= stop)
        key, mult = self._gather([key[keep], mult[keep]])
        o = np.argsort(key, kind="stable")
        stamp, sender = _core.key_to_stamp_gid(np.repeat(key[o], mult[o]))
        return {"senders": sender, "times": stamp * self.dt}

    def _wr_events(self, gid):
        c = self.core
        n = c.n_wrec
        wr_idx = int(np.searchsorted(self._wr_gids(), gid))
        sel = np.asarray(c.wr_id)[:n] == wr_idx
        stamp, src, tgt, w = self._gather([np.asarray(c.wr_stamp)[:n][sel], np.asarray(c.wr_src)[:n][sel],
                                          np.asarray(c.wr_tgt)[:n][sel], np.asarray(c.wr_w)[:n][sel]])
        o = np.lexsort((tgt, src, stamp))
        return {"senders": src[o], "targets": tgt[o], "times": stamp[o] * self.dt, "weights": w[o]}

    def node_state(self, gid, pop):
        c, st = self.core, self.st
        tid = int(st.gid2tid[gid])
        if tid < 0 or pop.kind not in ("rec", "readout"):
            return {}
        if pop.kind == "rec":
            EL = c.rec_EL[tid]
            d = {"V_m": c.rec_v[tid] + EL, "surrogate_gradient": c.rec_psi[tid],
                 "eprop_history_duration": c.h_count[tid] * self.dt}
            if "adapt_beta" in pop.params:
                d["adaptation"] = c.rec_a[tid]
                d["V_th_adapt"] = c.rec_A[tid] + EL
            return d
        j = tid - c.n_rec
        return {"V_m": c.out_v[j] + c.out_EL[j], "readout_signal": c.out_y[j], "target_signal": c.out_ystar[j],
                "error_signal": c.out_err[j], "eprop_history_duration": c.h_count[tid] * self.dt}

    # ---- connections ---------------------------------------------------------------------------
    def _conn_tables(self):
        """(kind, source gids, target tids, weights, delays in steps, model code) of the local
        connections; model code: index into st.ep_models, -1 static, -2 learning signal."""
        c, st = self.core, self.st
        ls_src = np.repeat(st.out_gids_global, np.diff(np.asarray(c.ls_ptr)))
        n_ls = ls_src.size
        return (("static", self._row_sources(c.st_ptr), np.asarray(c.st_tgt), np.asarray(c.st_w),
                 np.asarray(c.st_delay), np.full(np.asarray(c.st_w).size, -1)),
                ("eprop", self._row_sources(c.ep_ptr), np.asarray(c.ep_tgt), np.asarray(c.ep_w),
                 np.asarray(c.ep_delay), np.asarray(c.ep_model)),
                ("ls", ls_src, np.asarray(c.ls_tgt), np.asarray(c.ls_w), np.full(n_ls, st.d_or),
                 np.full(n_ls, -2)))

    def _model_names(self):
        ls_names = [b.syn_model for b in self.k.blocks if b.kind == "learning_signal"]
        return np.array(["static_synapse"] + list(self.st.ep_models) + [ls_names[0] if ls_names else ""],
                        dtype=object)

    def select_connections(self, src, tgt, synapse_model):
        st, c = self.st, self.core
        names = self._model_names()
        sel = []
        for kind, s_arr, t_tid, _, _, models in self._conn_tables():
            t_gid = np.asarray(c.tgt_gid)[t_tid] if t_tid.size else np.zeros(0, GID)
            m = np.ones(s_arr.size, bool)
            if src is not None:
                m &= np.isin(s_arr, src)
            if tgt is not None:
                m &= np.isin(t_gid, tgt)
            if synapse_model is not None:
                m &= names[models.astype(int) + 1] == synapse_model if models.size else m
            sel.append((kind, np.nonzero(m)[0]))
        return sel

    def _row_sources(self, ptr):
        """Source gid of every synapse of a CSR (derived, not stored: bytes per synapse)."""
        return np.repeat(self.st.sources, np.diff(np.asarray(ptr)))

    def get_connections(self, sel, keys=None):
        c = self.core
        tables = {t[0]: t for t in self._conn_tables()}
        cols = [[], [], [], [], []]
        for kind, idx in sel:
            _, s_arr, t_tid, w, d, mdl = tables[kind]
            for col, arr in zip(cols, (s_arr[idx], np.asarray(c.tgt_gid)[t_tid[idx]], w[idx],
                                       d[idx] * self.dt, mdl[idx])):
                col.append(arr)
        arrs = [np.concatenate(v) if v else np.zeros(0) for v in cols]
        src, tgt, w, d, mdl = self._gather(arrs)
        o = np.lexsort((tgt, src))
        out = {"source": src[o].astype(GID), "target": tgt[o].astype(GID), "weight": w[o], "delay": d[o],
               "synapse_model": self._model_names()[mdl[o].astype(int) + 1]}
        if keys is None:
            return out
        if isinstance(keys, str):
            return out[keys]
        return {k: out[k] for k in keys}

    def set_connections(self, sel, params):
        c = self.core
        for k, v in params.items():
            if k == "weight":
                for kind, idx in sel:
                    arr = np.asarray({"static": c.st_w, "eprop": c.ep_w, "ls": c.ls_w}[kind])
                    if np.ndim(v) and self.comm.size > 1:
                        raise BadProperty("SynapseCollection.set: per-connection weight arrays need 1 rank")
                    arr[idx] = v if not np.ndim(v) else np.asarray(v)[: idx.size]
            elif k == "optimizer":
                for kk, vv in dict(v).items():
                    if kk not in ("m", "v"):
                        raise BadProperty(f"SynapseCollection.set: optimizer accepts m, v; got '{kk}'")
                    arr = np.asarray(getattr(c, "ep_" + kk))
                    for kind, idx in sel:
                        if kind == "eprop" and arr.size:     # empty when no model uses Adam
                            arr[idx] = vv
            else:
                raise BadProperty(f"SynapseCollection.set: cannot set '{k}'")
