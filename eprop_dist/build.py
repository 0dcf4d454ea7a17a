"""Per-rank construction: local neuron arrays, incoming synapses (CSR by source gid), histories,
generators and recorders.  Each rank builds only what it owns; rule-based connections are drawn in
compiled code (csrc/connect.pyx) from streams keyed by target gid.
"""
from __future__ import annotations

import math

import numpy as np

from . import _connect, _driver
from . import models as M
from .errors import BadProperty, IllegalConnection
from .partition import is_local
from .random import RandomParameter
from .state import GID, LID, REAL, STEP, RankState, alloc_core

INF_STEPS = _driver.INF_STEPS
REC_CODE = {m: i for i, m in enumerate(M.REC_MODELS)}
SG_CODE = {m: i for i, m in enumerate(M.SURROGATES)}


def _c_exp(x):
    x = np.ascontiguousarray(x, dtype=REAL)
    out = np.empty_like(x)
    _driver.c_exp(x, out)
    return out


def steps_or_inf(ms, dt):
    ms = np.asarray(ms, dtype=float)
    out = np.where(np.isinf(ms), INF_STEPS, np.rint(np.where(np.isinf(ms), 0, ms) / dt))
    return out.astype(np.int64)


def base_model(kernel, name):
    spec = kernel.models[name]
    return spec.base or name


# ---------------------------------------------------------------------------------------------
# connection blocks -> local (src, tgt, weight, delay) arrays
# ---------------------------------------------------------------------------------------------
def _local_block(kernel, blk, rank, n_ranks, seed):
    """Connections of `blk` whose target this rank owns: (src, tgt, weight, delay) arrays."""
    if blk.rule == "explicit":
        keep = is_local(blk.tgt, rank, n_ranks) if blk.kind not in ("rate",) else \
            is_local(blk.tgt, rank, n_ranks)
        src, tgt = blk.src[keep], blk.tgt[keep]
        if isinstance(blk.weight, RandomParameter):
            w = _random(blk.weight, seed, blk.index, blk.tgt, keep)
        else:
            w = np.asarray(blk.weight, dtype=REAL)
            w = w[keep] if w.ndim else np.full(src.size, float(w))
        d = np.asarray(blk.delay)
        d = d[keep] if d.ndim else np.full(src.size, int(d), dtype=np.int64)
        return src, tgt, w, d.astype(np.int64)
    tgt_local = blk.tgt[is_local(blk.tgt, rank, n_ranks)]
    pool = blk.src
    if blk.rule == "fixed_indegree":
        k = blk.rule_args["indegree"]
        src = np.empty(tgt_local.size * k, dtype=GID)
        size = 1 << max(1, int(math.ceil(math.log2(max(2 * k, 2)))))
        _connect.fixed_indegree(tgt_local, pool, k, seed, blk.index, blk.rule_args["allow_autapses"],
                                blk.rule_args["allow_multapses"], src, np.empty(size, dtype=GID))
        tgt = np.repeat(tgt_local, k)
        rank_in = np.tile(np.arange(k, dtype=GID), tgt_local.size)
    else:  # pairwise_bernoulli
        p = blk.rule_args["p"]
        counts = np.empty(tgt_local.size, dtype=GID)
        _connect.pairwise_bernoulli_count(tgt_local, pool, p, seed, blk.index,
                                          blk.rule_args["allow_autapses"], counts)
        src = np.empty(int(counts.sum()), dtype=GID)
        _connect.pairwise_bernoulli_fill(tgt_local, pool, p, seed, blk.index,
                                         blk.rule_args["allow_autapses"], src)
        tgt = np.repeat(tgt_local, counts)
        rank_in = np.arange(src.size, dtype=GID) - np.repeat(np.cumsum(counts) - counts, counts)
    if isinstance(blk.weight, RandomParameter):
        w = np.empty(src.size, dtype=REAL)
        _connect.random_values(0 if blk.weight.distribution == "normal" else 1, blk.weight.a,
                               blk.weight.b, seed, blk.index, tgt, rank_in, w)
    else:
        w = np.full(src.size, float(blk.weight))
    d = np.full(src.size, int(blk.delay), dtype=np.int16)
    return src, tgt, w, d


def _random(rp, seed, block, tgt_all, keep):
    """Random weights of an explicit block: counter = rank of the connection within its target."""
    order = np.argsort(tgt_all, kind="stable")
    st = tgt_all[order]
    first = np.searchsorted(st, st, side="left")
    rank_in = np.empty(tgt_all.size, dtype=GID)
    rank_in[order] = np.arange(st.size) - first
    tgt = np.ascontiguousarray(tgt_all[keep])
    out = np.empty(tgt.size, dtype=REAL)
    _connect.random_values(0 if rp.distribution == "normal" else 1, rp.a, rp.b, seed, block, tgt,
                           np.ascontiguousarray(rank_in[keep]), out)
    return out


def _conn_keys(src, tgt, block):
    """Stream key of each connection: (target gid, block, occurrence of the (src, tgt) pair)."""
    if src.size == 0:
        return np.zeros(0, np.uint64)
    o = np.lexsort((tgt, src))
    pair = np.stack([src[o], tgt[o]])
    new = np.ones(src.size, bool)
    new[1:] = np.any(pair[:, 1:] != pair[:, :-1], axis=0)
    first = np.maximum.accumulate(np.where(new, np.arange(src.size), 0))
    occ = np.empty(src.size, np.int64)
    occ[o] = np.arange(src.size) - first
    return ((tgt.astype(np.uint64) << np.uint64(24)) | (np.uint64(block & 0xFFF) << np.uint64(12))
            | (occ.astype(np.uint64) & np.uint64(0xFFF)))


def _block_delays(blk):
    """(min, max) delay of a block, identical on every rank."""
    d = np.asarray(blk.delay)
    if d.ndim == 0:
        return int(d), int(d)
    if d.size == 0:
        return None
    return int(d.min()), int(d.max())


# ---------------------------------------------------------------------------------------------
def build(kernel, comm) -> RankState:
    rank, n_ranks = comm.rank, comm.size
    dt = kernel.dt
    seed = int(kernel.status["rng_seed"])
    n_global = kernel.n_nodes
    pops = kernel.populations

    kind_of = np.zeros(n_global + 1, dtype=np.int8)   # 0 device, 1 rec, 2 readout, 3 parrot
    for p in pops:
        kind_of[p.first:p.first + p.n] = {"rec": 1, "readout": 2, "parrot": 3}.get(p.kind, 0)
    all_gids = np.arange(n_global + 1, dtype=GID)
    local = is_local(all_gids, rank, n_ranks)
    rec_gids = all_gids[(kind_of == 1) & local]
    out_gids = all_gids[(kind_of == 2) & local]
    par_gids = all_gids[(kind_of == 3) & local]
    out_gids_global = all_gids[kind_of == 2]
    n_rec, n_out, n_par = rec_gids.size, out_gids.size, par_gids.size
    tgt_gids = np.concatenate([rec_gids, out_gids, par_gids])
    gid2tid = np.full(n_global + 1, -1, dtype=GID)
    gid2tid[tgt_gids] = np.arange(tgt_gids.size)

    # ---- delays, window D, learning-signal shift ------------------------------------------
    dmin, dmax = None, 1
    d_ro, d_or = set(), set()
    for blk in kernel.blocks:
        if blk.kind in ("record", "rate"):
            continue
        rng_ = _block_delays(blk)
        if rng_ is None:
            continue
        dmin = rng_[0] if dmin is None else min(dmin, rng_[0])
        dmax = max(dmax, rng_[1])
        if blk.kind == "learning_signal":
            d_or.update(np.unique(np.asarray(blk.delay)).tolist())
        if blk.kind == "eprop" and blk.tgt.size and np.any(kind_of[blk.tgt] == 2):
            dd = np.asarray(blk.delay)
            sel = kind_of[blk.tgt] == 2
            d_ro.update(np.unique(dd[sel] if dd.ndim else dd).tolist())
    for s, what in ((d_ro, "e-prop synapses recurrent -> readout"),
                    (d_or, "eprop_learning_signal_connection")):
        if len(s) > 1:
            raise IllegalConnection(f"all {what} must have the same delay (SPEC 10.2); got "
                                    f"{sorted(x * dt for x in s)} ms")
    d_ro = d_ro.pop() if d_ro else 1
    d_or = d_or.pop() if d_or else 1
    shift = d_ro + d_or
    if dmin is None:
        dmin = 1
    # ---- model family: e-prop+ or bsshslm_2020 (one per network) -------------------------------
    from .models import model_is_bss
    fams = {model_is_bss(kernel, p.model) for p in pops if p.kind in ("rec", "readout")}
    fams |= {model_is_bss(kernel, b.syn_model) for b in kernel.blocks if b.kind in ("eprop", "learning_signal")}
    if len(fams) > 1:
        raise IllegalConnection("a network holds either the e-prop+ models or the *_bsshslm_2020 models, "
                                "not both")
    bss = fams == {True}
    if bss:
        if dmin != 1 or dmax != 1:
            raise IllegalConnection("the bsshslm_2020 family requires every delay to be one step (SPEC 5)")
        d_ro, shift = 2, 3          # learning signal of readout iteration u -> entry u-2; recordable t-3
        T_int = kernel.ms_to_steps(float(kernel.status["eprop_update_interval"]), "kernel: eprop_update_interval", 1)
        LW = kernel.ms_to_steps(float(kernel.status["eprop_learning_window"]), "kernel: eprop_learning_window", 1)
        for p in pops:
            if p.kind == "rec" and np.any(np.asarray(p.params["flush_event_send_interval"]) < T_int * dt):
                raise BadProperty(f"{p.model}: flush_event_send_interval must be >= eprop_update_interval "
                                  f"({T_int * dt} ms)")
    D = kernel.status["comm_window"] or dmin
    if D > dmin:
        raise BadProperty(f"kernel: comm_window = {D} steps exceeds the minimum delay ({dmin} steps)")
    if shift + dmax - 2 >= 64:
        raise IllegalConnection(f"delays too long: e-prop pipeline needs shift + delay - 2 < 64 steps "
                                f"(shift {shift}, max delay {dmax})")

    st = RankState(rank=rank, n_ranks=n_ranks, dt=dt, D=int(D), shift=int(2 if bss else shift), d_ro=int(d_ro),
                   rec_gids=rec_gids, out_gids=out_gids, par_gids=par_gids,
                   out_gids_global=out_gids_global, gid2tid=gid2tid, kind_of=kind_of)
    st.d_or = int(d_or)

    # ---- synapse model table (e-prop optimizers) -----------------------------------------------
    ep_models = sorted(kernel.syn_common)
    st.ep_model_index = {m: i for i, m in enumerate(ep_models)}
    st.ep_models = ep_models

    # ---- connections ---------------------------------------------------------------------------
    parts = {"static": [], "eprop": [], "learning_signal": [], "rate": [], "poisson": []}
    mm_blocks, sr_blocks = [], []
    for blk in kernel.blocks:
        if blk.kind == "record":
            (mm_blocks if blk.syn_model == "multimeter" else sr_blocks).append(blk)
            continue
        src, tgt, w, d = _local_block(kernel, blk, rank, n_ranks, seed)
        kind = blk.kind
        part = dict(src=src, tgt=tgt, w=w, d=d, block=blk, pkey=_conn_keys(src, tgt, blk.index))
        if kind == "eprop" and "tau_m_readout" in blk.extra:
            part["tau_ro"] = np.full(src.size, blk.extra["tau_m_readout"])
        parts[kind].append(part)

    def cat(kind, key, dtype):
        arrs = [p[key] for p in parts[kind]]
        if len(arrs) == 1:
            return arrs[0].astype(dtype, copy=False)
        return np.concatenate(arrs).astype(dtype, copy=False) if arrs else np.zeros(0, dtype=dtype)

    # static + eprop spike synapses: CSR by source row (rows = sorted unique local sources)
    s_src, s_tgt, s_w, s_d = (cat("static", "src", GID), cat("static", "tgt", GID),
                              cat("static", "w", REAL), cat("static", "d", np.int64))
    s_key = cat("static", "pkey", np.uint64)
    e_src, e_tgt, e_w, e_d = (cat("eprop", "src", GID), cat("eprop", "tgt", GID),
                              cat("eprop", "w", REAL), cat("eprop", "d", np.int16))

    e_mod = np.concatenate([np.full(p["src"].size, st.ep_model_index[p["block"].syn_model], dtype=LID)
                            for p in parts["eprop"]]) if parts["eprop"] else np.zeros(0, LID)

    sources = np.unique(np.concatenate([s_src, e_src]))
    src_row = np.full(n_global + 1, -1, dtype=LID)
    src_row[sources] = np.arange(sources.size, dtype=LID)
    o_s = np.lexsort((s_tgt, s_src))
    o_e = np.lexsort((e_tgt, e_src))
    s_src, s_tgt, s_w, s_d, s_key = s_src[o_s], s_tgt[o_s], s_w[o_s], s_d[o_s], s_key[o_s]
    e_src, e_tgt, e_w, e_d, e_mod = e_src[o_e], e_tgt[o_e], e_w[o_e], e_d[o_e], e_mod[o_e]
    kappa_syn = None          # bsshslm: kappa = exp(-dt / tau_m_readout) per synapse
    if parts["eprop"] and all("tau_ro" in p for p in parts["eprop"]):
        kappa_syn = _c_exp(-dt / cat("eprop", "tau_ro", REAL))[o_e]
    del o_e
    for p in parts["eprop"]:          # free the per-block arrays (bytes per synapse at 1e8 synapses)
        p.clear()
    st.sources = sources

    # learning signals: CSR by global readout index, rows sorted (readout, rec tid)
    l_src, l_tgt, l_w = cat("learning_signal", "src", GID), cat("learning_signal", "tgt", GID), \
        cat("learning_signal", "w", REAL)
    l_row = np.searchsorted(out_gids_global, l_src)
    o_l = np.lexsort((gid2tid[l_tgt], l_row))
    l_row, l_tgt, l_w = l_row[o_l], l_tgt[o_l], l_w[o_l]

    # rate connections (step_rate_generator -> readout receptor 1/2)
    rgens = [p for p in pops if p.kind == "step_rate_generator"]
    rg_gids = np.concatenate([np.arange(p.first, p.first + p.n) for p in rgens]) if rgens else np.zeros(0, GID)
    st.rg_gids = rg_gids
    out_tgen = np.full(n_out, -1, LID)
    out_lwgen = np.full(n_out, -1, LID)
    out_tlag = np.zeros(n_out, np.uint8)
    out_lwlag = np.zeros(n_out, np.uint8)
    out_tw = np.ones(n_out, REAL)
    out_lww = np.ones(n_out, REAL)
    ro_src, ro_tgt, ro_w = [], [], []
    for p in parts["rate"]:
        rec_ = p["block"].receptor
        if kind_of[p["src"]].size and np.all(kind_of[p["src"]] == 2):     # bsshslm readout -> readout
            ro_src.append(np.searchsorted(out_gids_global, p["src"]))
            ro_tgt.append(gid2tid[p["tgt"]] - n_rec)
            ro_w.append(p["w"])
            continue
        for g, t, w in zip(p["src"], p["tgt"], p["w"]):
            lid = gid2tid[t] - n_rec
            arr_g, arr_l, arr_w = (out_tgen, out_tlag, out_tw) if rec_ == 2 else (out_lwgen, out_lwlag, out_lww)
            if arr_g[lid] >= 0:
                raise IllegalConnection(f"eprop_readout {t}: more than one step_rate_generator on receptor "
                                        f"{rec_} ({'target_signal' if rec_ == 2 else 'eprop_learning_window'})")
            arr_g[lid] = np.searchsorted(rg_gids, g)
            arr_l[lid] = 1 if g > t else 0
            arr_w[lid] = w

    # e-prop indegree -> histories
    h_has = np.zeros(n_rec + n_out, np.uint8)
    if e_tgt.size:
        h_has[np.unique(gid2tid[e_tgt])] = 1

    # multimeter slots
    mm_gids = np.array(sorted({int(g) for b in mm_blocks for g in b.src}), dtype=GID)
    st.mm_gids = mm_gids
    sl_mm, sl_tid, sl_field = [], [], []
    for b in mm_blocks:
        for m, t in zip(b.src, b.tgt):
            tid = gid2tid[t]
            if tid < 0:
                continue
            pop = kernel._pop_of([m])[0]
            rf = pop.params["record_from"][m - pop.first]
            tpop = kernel._pop_of([t])[0]
            spec = kernel.models[tpop.model]
            for r in rf:
                if r not in spec.recordables:
                    raise BadProperty(f"multimeter {m}: {tpop.model} has no recordable '{r}'; recordables: "
                                      f"{', '.join(spec.recordables)}")
                sl_mm.append(np.searchsorted(mm_gids, m))
                sl_tid.append(tid)
                sl_field.append(M.RECORDABLE_FIELDS[r])
    sl_mm = np.asarray(sl_mm, LID)
    sl_tid = np.asarray(sl_tid, LID)
    sl_field = np.asarray(sl_field, LID)
    sl_order = np.argsort(sl_tid, kind="stable").astype(LID)
    sl_ptr = np.zeros(tgt_gids.size + 1, STEP)
    np.add.at(sl_ptr, sl_tid.astype(np.int64) + 1, 1)
    sl_ptr = np.cumsum(sl_ptr)
    st.sl_mm, st.sl_tid, st.sl_field = sl_mm, sl_tid, sl_field
    spk_recorded = np.zeros(tgt_gids.size, np.uint8)
    st.sr_gids = np.array(sorted({int(g) for b in sr_blocks for g in b.tgt}), dtype=GID)
    st.sr_sources = {}
    for b in sr_blocks:
        for s_, r_ in zip(b.src, b.tgt):
            st.sr_sources.setdefault(int(r_), set()).add(int(s_))
            if gid2tid[s_] >= 0:
                spk_recorded[gid2tid[s_]] = 1

    core = alloc_core(st, n_rec=n_rec, n_out=n_out, n_par=n_par, RL=int(dmax + D),
                      n_out_global=out_gids_global.size,
                      n_src_rows=sources.size, src_row=src_row, tgt_gids=tgt_gids,
                      static=(s_src, gid2tid[s_tgt], s_w, s_d),
                      eprop=(e_src, gid2tid[e_tgt], e_w, e_d, e_mod),
                      ls=(l_row, gid2tid[l_tgt], l_w),
                      readout_gen=(out_tgen, out_lwgen, out_tlag, out_lwlag, out_tw, out_lww),
                      h_has=h_has, slots=(sl_mm, sl_tid, sl_field, sl_ptr, sl_order),
                      spk_recorded=spk_recorded, n_mm=mm_gids.size,
                      any_adaptive=bool(np.any([p.kind == "rec" and "adapt" in base_model(kernel, p.model)
                                                for p in pops])),
                      any_adam=any(kernel.syn_common[m]["optimizer"]["type"] == "adam" for m in ep_models))
    dl, gn, hs, rec, out = core.delivery, core.generators, core.history, core.rec, core.out
    dl.static_poisson_key = s_key
    gn.seed = seed
    pgs = [p for p in pops if p.kind == "poisson_generator"]
    pg_gids = np.concatenate([np.arange(p.first, p.first + p.n) for p in pgs]) if pgs else np.zeros(0, GID)
    pg_gids = pg_gids[src_row[pg_gids] >= 0] if pg_gids.size else pg_gids
    st.pg_gids = pg_gids
    gn.poisson_src_row = src_row[pg_gids].astype(LID)
    gn.poisson_gid = pg_gids.astype(GID)
    gn.poisson_start = np.zeros(pg_gids.size, STEP)
    gn.poisson_stop = np.zeros(pg_gids.size, STEP)
    gn.poisson_lambda = np.zeros(pg_gids.size)
    # ---- bsshslm family ----------------------------------------------------------------------
    core.bsshslm = bss
    core.recording.learning_signal_shift = 3 if bss else shift
    n_e = e_w.size
    nb = n_e if bss else 0
    bs = core.bsshslm_syn
    bs.t_previous_update = np.zeros(nb, LID)
    bs.t_next_update = np.full(nb, T_int if bss else 0, LID)
    bs.t_first_spike = np.zeros(nb, LID)
    bs.next_entry = np.zeros(nb, LID)
    bs.window_open = np.zeros(nb, np.uint8)
    bs.sum_e = np.zeros(nb)
    bs.gradient_window = np.zeros(nb)
    bs.kappa = kappa_syn if bss and nb else np.zeros(0)
    # the update-history key each synapse holds: {shift: indegree} at creation (readouts: ring key
    # = logical key + 1), moved by send() and settle()
    bs.held_key = np.where(gid2tid[e_tgt] < n_rec, 2, 4).astype(LID) if nb else np.zeros(0, LID)
    hs.n_fr_intervals = 8
    hs.firing_rate_reg_interval = np.zeros((n_rec + n_out, 8))
    dl.readout_u_all = np.zeros(out_gids_global.size)
    dl.readout_u_local = np.zeros((st.D, n_out))
    out.readout_signal_unnorm = np.zeros(n_out)
    out.P_z_in = np.ones(n_out)
    out.loss = np.zeros(n_out, LID)
    rec.P_z_in = np.ones(n_rec)
    rec.n_spikes_interval = np.zeros(n_rec, STEP)
    if ro_src:
        r_src, r_tgt, r_w = np.concatenate(ro_src), np.concatenate(ro_tgt), np.concatenate(ro_w)
        o = np.lexsort((r_src, r_tgt))
        r_src, r_tgt, r_w = r_src[o], r_tgt[o], r_w[o]
    else:
        r_src, r_tgt, r_w = np.zeros(0, LID), np.zeros(0, np.int64), np.zeros(0)
    ptr = np.zeros(n_out + 1, STEP)
    np.add.at(ptr, r_tgt.astype(np.int64) + 1, 1)
    out.normalizer_indptr = np.cumsum(ptr)
    out.normalizer_src_readout = r_src.astype(LID)
    out.normalizer_weight = r_w.astype(REAL)
    if bss:
        core.update_interval = T_int
        core.learning_window = LW
        core.reset_on_update = bool(kernel.status["eprop_reset_neurons_on_update"])
        # update history starts with {shift: e-prop indegree} (ring key = logical key + 1 for readouts)
        indeg = np.bincount(gid2tid[e_tgt], minlength=n_rec + n_out) if e_tgt.size else np.zeros(n_rec + n_out, int)
        upd = np.asarray(hs.update_count)
        for h in np.nonzero(h_has)[0]:
            key = 2 if h < n_rec else 4
            upd[h, key % hs.capacity] = indeg[h]
            np.asarray(hs.n_update_keys)[h] = 1
            np.asarray(hs.first_update_key)[h] = key
    st.core = core
    return st
