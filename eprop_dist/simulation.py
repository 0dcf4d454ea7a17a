"""The window loop (DESIGN 1) around the compiled core, plus parameter pushes and result gathering.

Serial runs stay inside ``Core.run`` for a whole Simulate call (no per-window Python); under MPI
the core returns after every window of D steps and :meth:`Simulation._exchange` gathers the
window's spikes and readout errors with buffer-based Allgatherv.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import _driver, _exchange
from . import models as M
from .build import REC_CODE, SG_CODE, base_model, build, steps_or_inf
from .comm import as_comm
from .errors import BadProperty, KernelException
from . import mm_store
from .mm_store import MultimeterStore
from .state import GID, LID, REAL, STEP, grow

ST = _driver.STATUS


def c_exp(x):
    """exp with the C library (NEST's std::exp); np.exp differs in the last bit for some inputs."""
    x = np.ascontiguousarray(x, dtype=REAL)
    out = np.empty_like(x)
    _driver.c_exp(x.ravel(), out.ravel())
    return out
INT32_MAX = 2**31 - 1


class Simulation:
    def __init__(self, kernel, comm=None):
        t0 = time.perf_counter()
        self.k = kernel
        self.comm = as_comm(comm)
        # the build is rank-local (no communication: GetConnections on one rank must not block);
        # Kernel.Simulate agrees on build errors across ranks, and the exchange is planned at the
        # first simulate()
        self.st = build(kernel, self.comm)
        self.core = self.st.core
        self.D = self.st.D
        self.dt = kernel.dt
        self.gen_set_t = {}                       # spike_generator gid -> step its times were set
        self._gen_dirty = True
        self._rg_dirty = True
        for pop in kernel.populations:
            self.push_nodes(pop, np.arange(pop.n), {}, None, initial=True)
        self.push_optimizers()
        self._fast_classes()
        # e-prop+ fast path: settle finished cutoff windows early (memory only, same numbers)
        self.core.syn.settle_windows = bool(kernel.status.get("eprop_settle_windows", True))
        self.timers = {"build": time.perf_counter() - t0, "update": 0.0, "deliver": 0.0, "eprop": 0.0,
                       "communicate": 0.0, "record": 0.0}
        self._exchange_planned = False
        self._mm_store = None                     # MultimeterStore, made at the first drain
        self._cleared = {}                        # recorder gid -> events before this iteration dropped
        # longest stretch (steps) the core runs without returning to Python: signal handlers run between
        # stretches (checkpoint.Checkpointer sets it); None = one stretch per Simulate.  Same results.
        self.max_stretch = None

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
        if pop.kind == "weight_recorder":
            if not initial:                  # at the build, push_optimizers sets the filter
                self._weight_filter()
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
            np.asarray(c.parrots.flush_interval)[tid - c.n_rec - c.n_out] = steps_or_inf(P["flush_event_send_interval"], dt)
            return
        EL = P["E_L"]
        Pv = c_exp(-dt / P["tau_m"])
        Pi = P["tau_m"] / P["C_m"] * (1.0 - Pv)
        if not initial and {"tau_m", "kappa", "kappa_reg"} & set(params):
            # the fast path's prefix quantities were built with the old alpha/kappa: from here on
            # these targets take the step path (it reads the raw history entries)
            np.asarray(c.history.fast_class)[tid] = -1
            np.asarray(c.history.fast_only)[tid] = 0
        if pop.kind == "readout":
            j = tid - c.n_rec
            arr = lambda name: np.asarray(getattr(c.out, name))  # noqa: E731
            if "regular_spike_arrival" in P:        # bsshslm readout
                arr("P_z_in")[j] = np.where(P["regular_spike_arrival"], 1.0, 1.0 - Pv)
                arr("loss")[j] = [M.LOSSES.index(x) for x in P["loss"]]
            arr("P_v_m")[j] = Pv
            arr("P_i_in")[j] = Pi
            arr("v_min")[j] = P["V_min"] - EL
            arr("I_e")[j] = P["I_e"]
            arr("E_L")[j] = EL
            self._set_state(arr("v_m"), j, P, params, old_EL, EL, initial)
            if "eprop_isi_trace_cutoff" in P:
                np.asarray(c.history.isi_trace_cutoff)[tid] = steps_or_inf(P["eprop_isi_trace_cutoff"], dt)
            return
        # recurrent
        model = base_model(self.k, pop.model)
        j = tid
        a = lambda name: np.asarray(getattr(c.rec, name))  # noqa: E731
        a("model")[j] = REC_CODE[model]
        a("surrogate_gradient_function")[j] = [SG_CODE[s] for s in P["surrogate_gradient_function"]]
        a("refractory_counts")[j] = np.rint(P["t_ref"] / dt)
        a("ignore_and_spike")[j] = P.get("ignore_and_spike", False)
        a("refractory_input")[j] = P.get("refractory_input", False)
        a("flush_interval")[j] = steps_or_inf(P["flush_event_send_interval"], dt)
        a("P_v_m")[j] = Pv
        a("P_i_in")[j] = Pi
        a("v_th")[j] = P["V_th"] - EL
        a("v_min")[j] = P["V_min"] - EL
        a("v_reset")[j] = P["V_reset"] - EL if "V_reset" in P else 0.0
        a("I_e")[j] = P["I_e"]
        a("E_L")[j] = EL
        adapt = "adapt_beta" in P
        a("adapt_beta")[j] = P["adapt_beta"] if adapt else 0.0
        a("P_adapt")[j] = c_exp(-dt / P["adapt_tau"]) if adapt else 0.0
        a("c_reg")[j] = P["c_reg"]
        a("f_target")[j] = P["f_target"] / 1000.0
        a("kappa")[j] = P.get("kappa", 0.0)
        a("kappa_reg")[j] = P.get("kappa_reg", 0.0)
        a("surrogate_gradient_height")[j] = P["surrogate_gradient_height"]
        a("surrogate_gradient_width")[j] = P["surrogate_gradient_width"]
        a("tau_m")[j] = P["tau_m"]
        if "eprop_isi_trace_cutoff" in P:
            np.asarray(c.history.isi_trace_cutoff)[tid] = steps_or_inf(P["eprop_isi_trace_cutoff"], dt)
        if "regular_spike_arrival" in P:        # bsshslm: P_z_in
            a("P_z_in")[j] = np.where(P["regular_spike_arrival"], 1.0, 1.0 - Pv)
        self._set_state(a("v_m"), j, P, params, old_EL, EL, initial)
        if "ignore_and_spike" in P and (initial or "ignore_and_spike_offset" in params
                                        or "ignore_and_spike_interval" in params):
            a("ignore_and_spike_offset")[j] = np.rint(P["ignore_and_spike_offset"] / dt)
            a("ignore_and_spike_interval")[j] = np.rint(P["ignore_and_spike_interval"] / dt)
            a("ignore_and_spike_countdown")[j] = np.rint(P["ignore_and_spike_offset"] / dt)
        if adapt and (initial or "adaptation" in params):
            a("adaptation")[j] = P["adaptation"]
        a("v_th_adapt")[j] = a("v_th")[j] + a("adapt_beta")[j] * a("adaptation")[j]

    @staticmethod
    def _set_state(v, j, P, params, old_EL, EL, initial):
        if initial or "V_m" in params:
            v[j] = P["V_m"] - EL
        elif old_EL is not None and "E_L" in params:
            v[j] = v[j] + old_EL - EL

    def push_optimizers(self):
        c, st = self.core, self.st
        n = len(st.ep_models)
        arrs = {"optimizer_type": np.zeros(n, LID), "optimize_each_step": np.zeros(n, LID), "weight_recorder": np.full(n, -1, LID),
                "average_gradient": np.zeros(n, LID),
                "batch_size": np.ones(n, STEP), "eta_change_count": np.zeros(n, STEP), "eta": np.zeros(n),
                "Wmin": np.zeros(n), "Wmax": np.zeros(n), "beta_1": np.zeros(n), "beta_2": np.zeros(n),
                "epsilon": np.zeros(n), "eta_first_change": np.zeros(n)}
        wr_gids = self._wr_gids()
        for i, m in enumerate(st.ep_models):
            com = self.k.syn_common[m]
            o = com["optimizer"]
            arrs["optimizer_type"][i] = M.OPTIMIZER_TYPES.index(o["type"])
            arrs["optimize_each_step"][i] = bool(o["optimize_each_step"])
            arrs["average_gradient"][i] = bool(com.get("average_gradient", False))
            arrs["batch_size"][i] = int(o["batch_size"])
            arrs["eta_change_count"][i] = com["eta_change_count"]
            arrs["eta"][i] = o["eta"]
            arrs["eta_first_change"][i] = com["eta_first_change"]
            arrs["Wmin"][i] = o["Wmin"]
            arrs["Wmax"][i] = o["Wmax"]
            arrs["beta_1"][i] = o["beta_1"]
            arrs["beta_2"][i] = o["beta_2"]
            arrs["epsilon"][i] = o["epsilon"]
            if com["weight_recorder"] is not None:
                arrs["weight_recorder"][i] = int(np.searchsorted(wr_gids, com["weight_recorder"]))
        for k, v in arrs.items():
            setattr(c.optimizer, k, v)
        c.recording.any_weight_recorder = bool(np.any(arrs["weight_recorder"] >= 0))
        self._weight_filter()
        self._fast_only()

    # ---- fast path (SPEC 10.4) -----------------------------------------------------------------
    def _fast_classes(self):
        """Parameter classes of the fast path: targets with the same (alpha, kappa, kappa_reg) share
        one table of powers; the block length B is the largest power of two <= 64 whose powers
        stay within a dynamic range of 16 (the precision of the prefix differences).  Adaptive e-prop+
        targets take window_adapt (bit-identical to the step loop, see _eprop_synapse.pyx); bsshslm
        adaptive targets and kappa or kappa_reg = 0 stay on the step path (fast_class = -1)."""
        c, hs = self.core, self.core.history
        n_h = c.n_rec + c.n_out
        cls = np.full(n_h, -1, np.int32)
        hs.fast_path = False
        if self.k.status.get("eprop_fast_path", True) and n_h:
            has = np.asarray(hs.has_history).astype(bool)
            model = np.asarray(c.rec.model)
            alpha = np.concatenate([np.asarray(c.rec.P_v_m), np.asarray(c.out.P_v_m)])
            if c.bsshslm:
                # e_bar is filtered with the synapse's kappa = exp(-dt/tau_m_readout): one per target
                # (else the step path); the kappa_reg slot is 1, so prefix slot 3 sums alpha^j psi
                kap = np.asarray(c.bsshslm_syn.kappa)
                tgt = np.asarray(c.syn.tgt_lid)
                k1 = np.ones(n_h)
                same = np.ones(n_h, bool)
                if kap.size:
                    lo = np.full(n_h, np.inf)
                    hi = np.full(n_h, -np.inf)
                    np.minimum.at(lo, tgt, kap)
                    np.maximum.at(hi, tgt, kap)
                    same = (lo == hi) | ~np.isfinite(lo)
                    k1[: c.n_rec] = np.where(np.isfinite(lo[: c.n_rec]), lo[: c.n_rec], 1.0)
                k2 = np.ones(n_h)
                ok = has & (alpha > 0) & (k1 > 0) & same
                ok[: c.n_rec] &= model == REC_CODE["eprop_iaf_bsshslm_2020"]
            else:
                k1 = np.concatenate([np.asarray(c.rec.kappa), np.ones(c.n_out)])
                k2 = np.concatenate([np.asarray(c.rec.kappa_reg), np.ones(c.n_out)])
                ok = has & (alpha > 0) & (k1 > 0) & (k2 > 0)
                # adaptive targets get a class too: their windows run window_adapt (the epsilon
                # recursion entry by entry, the step loop's operations) on fast-only histories
                ok[: c.n_rec] &= np.isin(model, [REC_CODE[m] for m in (
                    "eprop_iaf", "eprop_iaf_psc_delta", "eprop_iaf_adapt", "eprop_iaf_psc_delta_adapt")])
            keys, tabs, blocks = {}, [], []
            j = np.arange(65, dtype=float)
            for h in np.nonzero(ok)[0]:
                key = (float(alpha[h]), float(k1[h]), float(k2[h]))
                if key not in keys:
                    a, ka, kb = key
                    logs = [abs(math.log(x)) for x in (a, ka, kb, a / ka, a / kb) if x != 1.0]
                    B = 64
                    while B > 1 and logs and max(logs) * B > math.log(16.0):
                        B //= 2
                    tabs.append(np.stack([a ** j, a ** -j, ka ** j, ka ** -j, kb ** j, kb ** -j,
                                          (a / ka) ** j, (a / kb) ** j]))
                    blocks.append(B)
                    keys[key] = len(keys)
                cls[h] = keys[key]
            if keys:
                hs.class_powers = np.ascontiguousarray(np.stack(tabs))
                hs.class_block = np.asarray(blocks, STEP)
                hs.fast_path = True
        hs.fast_class = cls
        self._fast_only()

    def _fast_only(self):
        """Targets all of whose incoming e-prop synapses take the fast path (per-spike optimizer),
        and whose learning_signal / eprop_history_duration is not recorded (both recordables
        depend on which history entries exist, i.e. on NEST's middle erasure)."""
        c, hs = self.core, self.core.history
        n_h = c.n_rec + c.n_out
        cls = np.asarray(hs.fast_class)
        if cls.size != n_h:                      # before _fast_classes ran
            return
        step_tgt = np.zeros(n_h, bool)
        if len(self.st.ep_models):
            each = np.asarray(c.optimizer.optimize_each_step)[np.asarray(c.syn.syn_model)] != 0
            if np.any(each):
                step_tgt |= np.bincount(np.asarray(c.syn.tgt_lid)[each], minlength=n_h)[:n_h] > 0
        fld = np.asarray(self.st.sl_field)
        rec_h = np.asarray(self.st.sl_tid)[(fld == M.RECORDABLE_FIELDS["learning_signal"]) |
                                           (fld == M.RECORDABLE_FIELDS["eprop_history_duration"])]
        step_tgt[rec_h[rec_h < n_h]] = True
        hs.fast_only = ((cls >= 0) & ~step_tgt & bool(hs.fast_path)).astype(np.uint8)
        # bsshslm: silent sources' finished windows are settled at interval ends (memory only), except
        # where eprop_history_duration is recorded (it counts NEST's entries).  The learning_signal
        # recordable reads entry t-3, which settling never erases (keys move to the current interval
        # after its prune; tests/unit/test_bsshslm_memory.py checks it ==)
        settle = np.zeros(n_h, bool)
        if c.bsshslm and self.k.status.get("eprop_fast_path", True):
            settle = np.asarray(hs.has_history).astype(bool).copy()
            hd = np.asarray(self.st.sl_tid)[fld == M.RECORDABLE_FIELDS["eprop_history_duration"]]
            settle[hd[hd < n_h]] = False
        hs.bsshslm_settle = settle.astype(np.uint8)

    def _rate_schedule_from(self, g, now, t, v):
        """NEST's step_rate_generator when its amplitudes are set after `now` steps were simulated:
        the amplitude it holds stays until the first new amplitude time after `now`; new times at or
        before `now` are skipped (NEST's update only looks for t+1 == time)."""
        c = self.core
        lo, hi = int(c.generators.rate_indptr[g]), int(c.generators.rate_indptr[g + 1])
        old_t = np.asarray(c.generators.rate_times)[lo:hi]
        k = int(np.searchsorted(old_t, now, side="right"))      # old amplitude times <= now
        held = float(np.asarray(c.generators.rate_values)[lo + k - 1]) if k else 0.0
        keep = t > now
        return (np.concatenate([np.array([now], np.int64), t[keep]]),
                np.concatenate([np.array([held]), v[keep]]))

    def _weight_filter(self):
        """The weight recorders' senders/targets as a per-synapse flag, so that only the recorded
        synapses' transmissions are stored (36 bytes each); start/stop are applied when reading."""
        c = self.core
        wr_of_model = np.asarray(c.optimizer.weight_recorder)
        pops = {g: p for p in self.k.populations if p.kind == "weight_recorder"
                for g in range(p.first, p.first + p.n)}
        wr_gids = self._wr_gids()
        filters = {}
        for i, g in enumerate(wr_gids):
            p = pops[int(g)]
            snd = np.asarray(p.params["senders"][g - p.first], np.int64).ravel()
            tgt = np.asarray(p.params["targets"][g - p.first], np.int64).ravel()
            if snd.size or tgt.size:
                filters[i] = (snd, tgt)
        if not filters or not np.any(wr_of_model >= 0):
            c.recording.weight_recorded = np.zeros(0, np.uint8)
            return
        wr_of_syn = wr_of_model[np.asarray(c.syn.syn_model)] if wr_of_model.size else np.zeros(0, np.int32)
        flag = wr_of_syn >= 0
        src = self._row_sources(c.syn.indptr)
        tgt = np.asarray(c.delivery.tgt_gid)[np.asarray(c.syn.tgt_lid)]
        for i, (snd, tg) in filters.items():
            sel = wr_of_syn == i
            keep = np.ones(int(sel.sum()), bool)
            if snd.size:
                keep &= np.isin(src[sel], snd)
            if tg.size:
                keep &= np.isin(tgt[sel], tg)
            flag[np.nonzero(sel)[0]] = keep
        c.recording.weight_recorded = flag.astype(np.uint8)

    def _wr_gids(self):
        return np.array([g for p in self.k.populations if p.kind == "weight_recorder"
                         for g in range(p.first, p.first + p.n)], dtype=GID)

    def _refresh_devices(self):
        c, dt = self.core, self.dt
        pops = self.k.populations
        if self._gen_dirty:
            # NEST: by the end of a Simulate to step c.t every generator has emitted its spikes with
            # stamp <= c.t; those of the last window are delivered in the next one.  They stay
            # pending whatever spike_times are set to now (W3 sets new times after every phase, a
            # spike at the phase's last step was lost); new times count from stamp c.t + 1.
            old = np.asarray(c.generators.spike_gen_keys)[int(c.generators.spike_gen_next):]
            keys = [old[_driver.key_to_stamp_gid(old)[0] <= c.t]] if old.size else []
            for p in pops:
                if p.kind != "spike_generator":
                    continue
                for i in range(p.n):
                    g = p.first + i
                    s = np.rint(np.asarray(p.params["spike_times"][i], float) / dt).astype(np.int64)
                    lo = max(int(c.t), self.gen_set_t.get(g, 0))
                    s = s[s > lo]
                    keys.append(_driver.spike_key(s, g, device=True))
            c.generators.spike_gen_keys = np.sort(np.concatenate(keys)) if keys else np.zeros(0, GID)
            c.generators.spike_gen_next = 0
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
            c.generators.rate_indptr = np.asarray(ptr, STEP)
            c.generators.rate_times = np.concatenate(times).astype(STEP) if times else np.zeros(0, STEP)
            c.generators.rate_values = np.concatenate(vals).astype(REAL) if vals else np.zeros(0)
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
                stop[i] = _driver.INF_STEPS if math.isinf(sp) else int(math.floor(sp / dt + 1e-9))
            c.generators.poisson_lambda, c.generators.poisson_start, c.generators.poisson_stop = lam, start, stop
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
            c.recording.multimeter_start, c.recording.multimeter_stop, c.recording.multimeter_interval = start, stop, interval

    # ---- the loop ------------------------------------------------------------------------------
    def simulate(self, steps, progress=None):
        """Advance by `steps` (any number >= 0: the core shortens the last window to end there, and
        any window length <= the minimum delay gives the same results).  `progress(t_ms, start_ms,
        stop_ms)`, if given, is called about 10 times along the way (NEST's print_time); the run is
        then cut into stretches of whole windows, which gives the same results as one stretch."""
        if steps < 0:
            raise BadProperty(f"Simulate: {steps} steps is negative")
        if not self._exchange_planned:       # collective: every rank is in simulate() here
            self._prep_exchange()
            self._exchange_planned = True
        self._refresh_devices()
        c = self.core
        t_start = c.t
        t_stop = c.t + steps
        serial = self.comm.size == 1
        d0, e0, u0 = c.t_deliver, c.delivery.t_eprop, c.t_update
        chunk = steps if progress is None else max(self.D, (steps // 10) // self.D * self.D)
        if self.max_stretch:
            chunk = min(chunk, max(self.D, self.max_stretch // self.D * self.D))
        t_goal = min(t_stop, t_start + chunk)
        while True:
            st = c.run(t_goal, serial)
            if st == ST["DONE"]:
                if progress is not None:
                    progress(c.t * self.dt, t_start * self.dt, t_stop * self.dt)
                if t_goal >= t_stop:
                    break
                t_goal = min(t_stop, t_goal + chunk)
                continue
            if st == ST["GROW"]:
                self._grow(c.grow_what)
            elif st == ST["EXCHANGE"]:
                t0 = time.perf_counter()
                self._exchange()
                self.timers["communicate"] += time.perf_counter() - t0
            elif st == ST["ERR_HISTORY"]:
                raise KernelException(f"Expected e-prop history entry at t={c.history.missing_t} of node "
                                      f"{int(np.asarray(c.delivery.tgt_gid)[c.history.missing_tgt_lid])} (history was pruned too early)")
            else:  # pragma: no cover
                raise KernelException(f"core returned unknown status {st}")
        self.timers["deliver"] += c.t_deliver - d0 - (c.delivery.t_eprop - e0)
        self.timers["eprop"] += c.delivery.t_eprop - e0
        self.timers["update"] += c.t_update - u0

    def _grow(self, what):
        """GROW: a full multimeter sample buffer of mm_store.RAW_CAP values is drained into the
        compact store (mm_store.py) instead of being enlarged, so recording memory is 8 bytes per
        value, not 20 plus doubling."""
        c = self.core
        R = _driver.GROW_REASONS
        if what & R["samples"] and c.recording.sample_value.shape[0] >= mm_store.RAW_CAP:
            self.mm_store.drain(c)
            if 2 * c.recording.slot_multimeter.shape[0] * c.D <= c.recording.sample_value.shape[0]:
                what &= ~R["samples"]
        grow(c, what)

    def check_finite(self):
        """Stop training the moment a weight has become non-finite (checked after every Simulate on the
        local synapses: one vectorised pass over the weight arrays)."""
        c = self.core
        for arr, what in ((c.syn.weight, "e-prop synapse weight"), (c.out.v_m, "readout V_m"),
                          (c.rec.v_m, "neuron V_m")):
            arr = np.asarray(arr)
            if arr.size and not np.isfinite(arr).all():
                i = int(np.flatnonzero(~np.isfinite(arr))[0])
                n_bad = int(np.count_nonzero(~np.isfinite(arr)))
                raise KernelException(
                    f"Simulate: {n_bad} {what} value(s) became non-finite (first: index {i} = {arr[i]!r}) by "
                    f"t = {self.core.t * self.dt} ms on rank {self.comm.rank}; training diverged (check eta, "
                    f"the optimizer and the weights)")

    def _prep_exchange(self):
        """Plan the per-window exchange.  Spikes and readout errors travel in one int64 message per
        rank (errors as float64 bit patterns after the spike pairs), so a window costs one count
        exchange and one variable-size collective:
          allgather: every rank receives every spike (Allgather + Allgatherv);
          alltoall:  a spike goes only to the ranks with synapses from its source (Alltoall +
                     Alltoallv); errors go to every rank.
        The routing plan is a CSR over this rank's neurons (slot gid // n_ranks under the round-robin
        partition) listing the ranks that need each one: memory ~ n_local + what this rank sends, not
        n_ranks x n_global.  Packing and unpacking run in compiled code (csrc/exchange.pyx) on
        buffers planned here, which grow by doubling; benchmarks/scaling.py compares both schemes."""
        st = self.st
        n = self.comm.size
        self.exchange = self.k.status.get("exchange", "alltoall")
        glob = st.out_gids_global
        owner = (glob % n).astype(np.int64)
        self._bss = bool(self.core.bsshslm)
        # readouts owned by each rank, and their global readout indices in rank order
        self._n_out_of = np.bincount(owner, minlength=n).astype(np.int64)
        self._err_perm = np.argsort(owner, kind="stable").astype(np.int64)
        self._sendcounts, self._sdispl, self._cursor, self._recvcounts, self._rdispl = (
            np.zeros(n, np.int64) for _ in range(5))
        self._send = np.zeros(1024, GID)
        self._recv = np.zeros(1024, GID)
        self._u_none = np.zeros((self.D, 0), REAL)
        self._u_all_none = np.zeros(0, REAL)
        self._routed = self.exchange == "alltoall" and n > 1
        self._dst_ptr = np.zeros(2, np.int64)
        self._dst_rank = np.zeros(0, np.int32)
        if self._routed:
            # which of my neurons does each rank need?  (set-up only: pickled alltoall)
            srcs = np.unique(st.sources[st.kind_of[st.sources] > 0])   # neuron sources with local synapses
            own = srcs % n
            parts = np.split(srcs[np.argsort(own, kind="stable")], np.cumsum(np.bincount(own, minlength=n))[:-1])
            want = self.comm.alltoall(parts)                           # want[r]: my gids rank r needs
            sizes = np.array([w.size for w in want], np.int64)
            slot = np.concatenate(want).astype(np.int64) // n if sizes.sum() else np.zeros(0, np.int64)
            rank = np.repeat(np.arange(n, dtype=np.int32), sizes)
            order = np.lexsort((rank, slot))
            n_slots = (st.gid2tid.size - 1) // n + 1
            self._dst_rank = np.ascontiguousarray(rank[order])
            self._dst_ptr = np.zeros(n_slots + 1, np.int64)
            np.cumsum(np.bincount(slot, minlength=n_slots), out=self._dst_ptr[1:])

    def _grow_recv(self, m):
        if m > self._recv.size:
            self._recv = np.zeros(2 * m + 1024, GID)
        return self._recv

    def _exchange(self):
        """Window end under MPI: all spikes for local synapses -> in_buf; all readout errors -> err_all."""
        c, comm = self.core, self.comm
        u_loc = c.delivery.readout_u_local if self._bss else self._u_none
        while True:
            w = _exchange.pack(c.delivery.spikes_out, c.delivery.n_outgoing, c.delivery.error_local, u_loc, self._bss, self._dst_ptr, self._dst_rank,
                               self._routed, comm.size, self._sendcounts, self._sdispl, self._cursor, self._send)
            if w >= 0:
                break
            self._send = np.zeros(2 * -w + 1024, GID)
        if self._routed:
            recv = comm.exchange_alltoallv(self._send, self._sendcounts, self._sdispl, self._recvcounts,
                                           self._rdispl, self._grow_recv)
        else:
            recv = comm.exchange_allgatherv(self._send, w, self._recvcounts, self._rdispl, self._grow_recv)
        u_all = c.delivery.readout_u_all if self._bss else self._u_all_none
        while True:
            k = _exchange.unpack(recv, self._recvcounts, self._n_out_of, self._err_perm, self._bss,
                                 c.delivery.spikes_in, c.delivery.error_all, u_all)
            if k >= 0:
                break
            c.delivery.spikes_in = np.zeros(2 * -k + 1024, GID)
        c.delivery.n_incoming = k // 2
        c.delivery.n_outgoing = 0

    # ---- results -------------------------------------------------------------------------------
    def _visible_t(self):
        """Iterations whose samples are collected (NEST: the last window is not, until next Simulate)."""
        c = self.core
        return c.t - c.last_len if not c.delivered else c.t

    def clear_events(self, gids):
        """NEST's ``n_events = 0``: forget the events collected so far (later ones are kept)."""
        for g in np.atleast_1d(gids):
            self._cleared[int(g)] = self._visible_t()

    def events(self, gid, scope=None):
        """Events of recorder `gid`: of this rank's nodes (scope 'local', NEST's semantics, no
        communication) or of all ranks (scope 'global': collective, every rank must call it).
        `scope` None: the kernel's read_scope."""
        pop = self.k._pop_of([gid])[0]
        t0 = time.perf_counter()
        scope = self._scope(scope)
        if pop.kind == "multimeter":
            ev = self._mm_events(gid, pop, scope)
        elif pop.kind == "spike_recorder":
            ev = self._sr_events(gid, pop, scope)
        else:
            ev = self._wr_events(gid, pop, scope)
        cut = self._cleared.get(int(gid))
        if cut is not None:      # times are (iteration + 1) * dt for samples, stamp * dt for spikes
            keep = ev["times"] > cut * self.dt + 1e-9 * self.dt
            ev = {key: val[keep] for key, val in ev.items()}
        self.timers["record"] += time.perf_counter() - t0
        return ev

    def _scope(self, scope):
        scope = self.k.status.get("read_scope", "local") if scope is None else scope
        if scope not in ("local", "global"):
            raise BadProperty(f"read scope must be 'local' or 'global', got {scope!r}")
        return scope

    def _gather(self, arrays, scope):
        if scope == "local" or self.comm.size == 1:
            return list(arrays)
        parts = self.comm.allgather(arrays)
        return [np.concatenate([p[i] for p in parts]) for i in range(len(arrays))]

    @property
    def mm_store(self):
        if self._mm_store is None:
            self._mm_store = MultimeterStore(self.st)
        return self._mm_store

    def _mm_events(self, gid, pop, scope):
        st = self.st
        rf = list(pop.params["record_from"][gid - pop.first])
        self.mm_store.drain(self.core)
        m_idx = int(np.searchsorted(st.mm_gids, gid)) if st.mm_gids.size else -1
        # one event per (time, sender), ordered by time then sender (rows are in time order,
        # senders ascending within a row)
        times, senders, cols = self.mm_store.events(m_idx, self._visible_t(),
                                                    [M.RECORDABLE_FIELDS[r] for r in rf], self.dt)
        if scope != "local" and self.comm.size > 1:
            times, senders, *cols = self._gather([times, senders, *cols], scope)
            o = np.lexsort((senders, times))
            times, senders, cols = times[o], senders[o], [col[o] for col in cols]
        ev = {"times": times, "senders": senders.astype(GID, copy=False)}
        for r, col in zip(rf, cols):
            ev[r] = col
        return ev

    def _sr_events(self, gid, pop, scope):
        c, st = self.core, self.st
        n = c.recording.n_spikes
        key = np.asarray(c.recording.spike_key)[:n]
        mult = np.asarray(c.recording.spike_multiplicity)[:n]
        stamp, sender = _driver.key_to_stamp_gid(key)
        srcs = np.array(sorted(st.sr_sources.get(int(gid), ())), dtype=GID)
        keep = (stamp <= self._visible_t()) & np.isin(sender, srcs)
        p = pop.params
        start = float(p["start"][gid - pop.first])
        stop = float(p["stop"][gid - pop.first])
        keep &= (stamp * self.dt > start) & (stamp * self.dt <= stop)
        key, mult = self._gather([key[keep], mult[keep]], scope)
        o = np.argsort(key, kind="stable")
        stamp, sender = _driver.key_to_stamp_gid(np.repeat(key[o], mult[o]))
        return {"senders": sender, "times": stamp * self.dt}

    def _wr_events(self, gid, pop, scope):
        c = self.core
        n = c.recording.n_weights
        wr_idx = int(np.searchsorted(self._wr_gids(), gid))
        sel = np.asarray(c.recording.weight_recorder_id)[:n] == wr_idx
        stamp, src, tgt, w = (np.asarray(c.recording.weight_stamp)[:n][sel],
                              np.asarray(c.recording.weight_src_gid)[:n][sel],
                              np.asarray(c.recording.weight_tgt_gid)[:n][sel],
                              np.asarray(c.recording.weight_value)[:n][sel])
        # NEST's weight_recorder filters: senders / targets (empty: all), start < t <= stop
        p, q = pop.params, gid - pop.first
        keep = np.ones(stamp.size, bool)
        if len(p["senders"][q]):
            keep &= np.isin(src, p["senders"][q])
        if len(p["targets"][q]):
            keep &= np.isin(tgt, p["targets"][q])
        t_ms = stamp * self.dt
        keep &= (t_ms > float(p["start"][q]) + 1e-9 * self.dt) & (t_ms <= float(p["stop"][q]) + 1e-9 * self.dt)
        stamp, src, tgt, w = self._gather([stamp[keep], src[keep], tgt[keep], w[keep]], scope)
        o = np.lexsort((tgt, src, stamp))
        return {"senders": src[o], "targets": tgt[o], "times": stamp[o] * self.dt, "weights": w[o]}

    def node_state(self, gid, pop):
        c, st = self.core, self.st
        tid = int(st.gid2tid[gid])
        if tid < 0 or pop.kind not in ("rec", "readout"):
            return {}
        if pop.kind == "rec":
            EL = c.rec.E_L[tid]
            d = {"V_m": c.rec.v_m[tid] + EL, "surrogate_gradient": c.rec.surrogate_gradient[tid],
                 "eprop_history_duration": c.history.n_entries[tid] * self.dt}
            if "adapt_beta" in pop.params:
                d["adaptation"] = c.rec.adaptation[tid]
                d["V_th_adapt"] = c.rec.v_th_adapt[tid] + EL
            return d
        j = tid - c.n_rec
        return {"V_m": c.out.v_m[j] + c.out.E_L[j], "readout_signal": c.out.readout_signal[j], "target_signal": c.out.target_signal[j],
                "error_signal": c.out.error_signal[j], "eprop_history_duration": c.history.n_entries[tid] * self.dt}

    # ---- connections ---------------------------------------------------------------------------
    def _conn_tables(self):
        """(kind, source gids, target tids, weights, delays in steps, model code) of the local
        connections; model code: index into st.ep_models, -1 static, -2 learning signal."""
        c, st = self.core, self.st
        ls_src = np.repeat(st.out_gids_global, np.diff(np.asarray(c.delivery.ls_indptr)))
        n_ls = ls_src.size
        return (("static", self._row_sources(c.delivery.static_indptr), np.asarray(c.delivery.static_tgt_lid), np.asarray(c.delivery.static_weight),
                 np.asarray(c.delivery.static_delay), np.full(np.asarray(c.delivery.static_weight).size, -1)),
                ("eprop", self._row_sources(c.syn.indptr), np.asarray(c.syn.tgt_lid), np.asarray(c.syn.weight),
                 np.asarray(c.syn.delay), np.asarray(c.syn.syn_model)),
                ("ls", ls_src, np.asarray(c.delivery.ls_tgt_lid), np.asarray(c.delivery.ls_weight), np.full(n_ls, st.d_or),
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
            t_gid = np.asarray(c.delivery.tgt_gid)[t_tid] if t_tid.size else np.zeros(0, GID)
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

    def get_connections(self, sel, keys=None, scope=None, sort=True):
        """Connections `sel` of this rank (scope 'local') or of all ranks (scope 'global',
        collective), sorted by (source, target) unless sort=False (then in `sel` order, local)."""
        c = self.core
        tables = {t[0]: t for t in self._conn_tables()}
        cols = [[], [], [], [], []]
        for kind, idx in sel:
            _, s_arr, t_tid, w, d, mdl = tables[kind]
            for col, arr in zip(cols, (s_arr[idx], np.asarray(c.delivery.tgt_gid)[t_tid[idx]], w[idx],
                                       d[idx] * self.dt, mdl[idx])):
                col.append(arr)
        arrs = [np.concatenate(v) if v else np.zeros(0) for v in cols]
        src, tgt, w, d, mdl = self._gather(arrs, self._scope(scope))
        o = np.lexsort((tgt, src)) if sort else np.arange(src.size)
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
                    arr = np.asarray({"static": c.delivery.static_weight, "eprop": c.syn.weight,
                                      "ls": c.delivery.ls_weight}[kind])
                    if np.ndim(v) and np.size(v) != idx.size:
                        raise BadProperty(f"SynapseCollection.set: {np.size(v)} weights for {idx.size} "
                                          "connections")
                    if not np.all(np.isfinite(v)):
                        raise BadProperty("SynapseCollection.set: weight must be finite")
                    arr[idx] = v
            elif k == "optimizer":
                for kk, vv in dict(v).items():
                    if kk not in ("m", "v"):
                        raise BadProperty(f"SynapseCollection.set: optimizer accepts m, v; got '{kk}'")
                    arr = np.asarray(getattr(c.optimizer, kk))
                    for kind, idx in sel:
                        if kind == "eprop" and arr.size:     # empty when no model uses Adam
                            arr[idx] = vv
            else:
                raise BadProperty(f"SynapseCollection.set: cannot set '{k}'")
