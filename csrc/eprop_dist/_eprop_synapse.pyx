# e-prop synapse send() (SPEC 3.2, generalised: shift = d_ro + d_or, delay d -> z pipeline bit
# d + shift - 2).  Declarations: _eprop_synapse.pxd.
#
# At an event with stamp s of synapse k onto target h, previous event sp, cutoff c (isi = s - sp):
#   the entries t = sp - shift + 1 + i, i < n = min(isi, remaining cutoff), are evaluated:
#     z_bar <- alpha z_bar + z_i                               (alpha = P_v_m of the target)
#     recurrent: e = psi_t (z_bar - beta epsilon), epsilon <- rho epsilon + e   (adaptive)
#                e = psi_t z_bar                                               (otherwise)
#                e_bar <- kappa e_bar + e,  e_bar_reg <- kappa_reg e_bar_reg + (1 - kappa_reg) e
#                g_t = L_t e_bar + F_t e_bar_reg
#     readout:   g_t = L_t z_bar
#   then the traces decay over the skipped tail (decay_steps), and the summed gradient G goes
#   through the optimizer with index s - 1 (optimize_each_step: each g_t with index t + 1).
#
# Fast path (SPEC 10.4), the default for per-spike optimisation onto targets with a fast class
# (History.fast_class >= 0; the step loop above stays the reference: kernel eprop_fast_path=False).
# Adaptive targets: window_adapt (the step loop's operations over raw ring pointers, no closed form
# for the epsilon recursion yet); the others: window_fast below.
# The window [a, a+n) is cut into pieces [p, q] at absolute block boundaries (multiples of B) and
# before every entry where a presynaptic spike enters z_bar (set bits of z_pending).  In a piece
# z_bar decays geometrically from Z = alpha z_bar_in + z_p, so with the block base b and the
# target's prefix quantities (History.prefix; X_{p-1} = 0 when p == b), for each filter k (kappa:
# signal W = L, s = 1; kappa_reg: W = F, s = 1 - kappa_reg), E = the trace before the piece:
#   sum_{t=p..q} W_t e_bar_t = E k^(b-p+1) (R_q - R_{p-1})
#                            + s Z alpha^(b-p) [(Q_q - Q_{p-1}) - A_{p-1} (R_q - R_{p-1})]
#   e_bar_q = k^(q-p+1) E + s Z k^(q-b) alpha^(b-p) (A_q - A_{p-1})
#   readout (g_t = err_t z_bar_t): sum = Z alpha^(b-p) (R_q - R_{p-1});  z_bar_q = Z alpha^(q-p).
# Pieces shorter than FAST_DIRECT entries run the step recursion itself (prefix differences would
# cancel most there).  The cost per event is O(1 + n/B + #spikes in the pipeline).
from libc.math cimport pow
from libc.stdint cimport INT32_MAX
from eprop_dist._neurons cimport M_IAF_ADAPT, M_DELTA_ADAPT
from eprop_dist._optimizer cimport optimize
from eprop_dist._history cimport update_inc, update_dec
from _typedefs cimport EPROP_INF_STEPS

cdef extern from *:
    """
    #define eprop_ctz64(x) __builtin_ctzll(x)
    """
    int eprop_ctz64(uint64_t x) nogil

cdef extern from *:
    """
    #define eprop_prefetch(p) __builtin_prefetch((const void*)(p))
    """
    void eprop_prefetch(const void* p) nogil

cdef int64_t FAST_DIRECT = 8
cdef uint8_t SETTLED = 2             # previous_was_flush: the last event was a settle (no key)
cdef int64_t SETTLE_EVERY = 8         # steps between settle scans
cdef int64_t PREFETCH_AHEAD = 6      # synapses: the targets' rows are random, about a DRAM latency ahead


cdef inline void window_fast(History hs, int64_t h, bint readout, real_t alpha, real_t k1, real_t k2,
                             int64_t a, int64_t n, uint64_t zp, real_t* zbar, real_t* ebar,
                             real_t* ereg, real_t* G) noexcept nogil:
    """The window [a, a+n) of one synapse onto target h (traces and gradient INOUT)."""
    cdef int64_t cls = hs.fast_class[h]
    cdef int64_t bmask = hs.class_block[cls] - 1, cmask = hs.cmask
    cdef int64_t t = a, end = a + n, p, q, b, jp, jq, nxt, zi, u, sl
    cdef uint64_t zbits = zp if n >= 64 else zp & (((<uint64_t>1) << n) - 1)
    cdef uint64_t rest
    cdef real_t s2 = 1.0 - k2, Z = zbar[0], E1 = ebar[0], E2 = ereg[0], g = G[0]
    cdef real_t dR, Ap, Rp, Qp, am, e
    # raw rows: prefix entries of 6, power tables of 65
    cdef const real_t* P = &hs.prefix[0, h, 0]
    cdef int64_t pstride = hs.prefix.shape[1] * hs.prefix.shape[2]   # one ring slot of all targets
    cdef const real_t* Pu
    cdef const real_t* Pq
    cdef const real_t* Pp
    cdef const real_t* T = &hs.class_powers[cls, 0, 0]
    while t < end:
        p = t
        b = p - (p & bmask)
        jp = p - b
        q = b + bmask
        if q > end - 1:
            q = end - 1
        zi = p - a
        if zi < 64:
            Z = alpha * Z + <real_t>((zbits >> zi) & 1)
            rest = zbits >> (zi + 1) if zi < 63 else 0
            if rest:
                nxt = p + 1 + eprop_ctz64(rest)
                if nxt - 1 < q:
                    q = nxt - 1
        else:
            Z = alpha * Z
        jq = q - b
        if q - p < FAST_DIRECT:
            for u in range(p, q + 1):          # the step recursion (same operations)
                Pu = P + pstride * (u & cmask)     # the entry's copies psi, L, F (6, 7, 8)
                if u > p:
                    Z = alpha * Z
                if readout:
                    g += Pu[7] * Z
                else:
                    e = Pu[6] * Z
                    E1 = k1 * E1 + e
                    E2 = k2 * E2 + s2 * e
                    g += Pu[7] * E1 + Pu[8] * E2
            t = q + 1
            continue
        Pq = P + pstride * (q & cmask)
        Pp = P + pstride * ((p - 1) & cmask)
        am = T[65 + jp]                            # alpha^(b-p)
        if readout:
            Rp = Pp[0] if jp > 0 else 0.0
            g += Z * am * (Pq[0] - Rp)
        else:
            if jp > 0:                             # filter 1: kappa, signal L
                Ap = Pp[0]
                Rp = Pp[1]
                Qp = Pp[2]
            else:
                Ap = 0.0
                Rp = 0.0
                Qp = 0.0
            dR = Pq[1] - Rp
            g += E1 * k1 * T[3 * 65 + jp] * dR + Z * am * ((Pq[2] - Qp) - Ap * dR)
            E1 = T[2 * 65 + jq - jp + 1] * E1 + Z * T[2 * 65 + jq] * am * (Pq[0] - Ap)
            if jp > 0:                             # filter 2: kappa_reg, signal F, input (1 - kappa_reg) e
                Ap = Pp[3]
                Rp = Pp[4]
                Qp = Pp[5]
            else:
                Ap = 0.0
                Rp = 0.0
                Qp = 0.0
            dR = Pq[4] - Rp
            g += E2 * k2 * T[5 * 65 + jp] * dR + s2 * Z * am * ((Pq[5] - Qp) - Ap * dR)
            E2 = T[4 * 65 + jq - jp + 1] * E2 + s2 * Z * T[4 * 65 + jq] * am * (Pq[3] - Ap)
        Z = Z * T[jq - jp]
        t = q + 1
    zbar[0] = Z
    ebar[0] = E1
    ereg[0] = E2
    G[0] = g




cdef inline bint window_adapt(History hs, int64_t h, real_t alpha, real_t kappa, real_t kreg,
                              real_t beta, real_t rho, int64_t a, int64_t n, uint64_t zp, real_t* zbar,
                              real_t* ebar, real_t* ereg, real_t* eps, real_t* G) noexcept nogil:
    """The window [a, a+n) of one synapse onto an adaptive target h (eprop_iaf_adapt,
    eprop_iaf_adapt_psc_delta) with a fast class: the epsilon recursion (coefficient rho - beta psi_t,
    time-varying) runs entry by entry, with the step loop's operations in its order (so the result
    is the step path's, bit for bit, on any window or rank count), over raw pointers into the
    target's rings, the valid flags checked once before any state is written.  What the fast class
    brings: fast-only histories (no middle erasure), settled windows, no per-entry range checks.
    Returns False (nothing written) when an entry is missing: the caller's step loop reports it."""
    cdef int64_t cmask = hs.cmask, t, sl, i
    cdef const uint8_t* ok = &hs.valid[h, 0]
    cdef const real_t* psi_h = &hs.surrogate_gradient[h, 0]
    cdef const real_t* L_h = &hs.learning_signal[h, 0]
    cdef const real_t* F_h = &hs.firing_rate_reg[h, 0]
    cdef real_t Z = zbar[0], E1 = ebar[0], E2 = ereg[0], ep = eps[0], g = G[0], e, s2 = 1.0 - kreg
    if not hs.fast_only[h]:                     # middle erasure may have run: check the flags
        for t in range(a, a + n):
            if not ok[t & cmask]:
                return False
    for i in range(n):
        sl = (a + i) & cmask
        Z = alpha * Z + (<real_t>((zp >> i) & 1) if i < 64 else 0.0)
        e = psi_h[sl] * (Z - beta * ep)
        ep = rho * ep + e
        E1 = kappa * E1 + e
        E2 = kreg * E2 + s2 * e
        g += L_h[sl] * E1 + F_h[sl] * E2
    zbar[0] = Z
    ebar[0] = E1
    ereg[0] = E2
    eps[0] = ep
    G[0] = g
    return True


cdef inline int _send(EpropSynapses syn, History hs, Optimizer opt, RecurrentNeurons rec,
                      Readouts out, int64_t k, int64_t s, bint is_flush, int64_t t_now,
                      bint settle=False) noexcept nogil:
    """Event with stamp s (flush event: is_flush) at synapse k; t_now: first iteration of the
    window being delivered.  Returns 0, or -1 when a needed history entry is missing.
    settle: an internal flush event (see _settle): no update-history key, is_flush implied."""
    cdef int64_t h = syn.tgt_lid[k]
    cdef int64_t sp = syn.t_spike_previous[k]
    cdef int64_t isi, rem, n, a, i, t, sl, dec, n_loop
    cdef int mdl = syn.syn_model[k]
    cdef uint64_t zp = syn.z_pending[k]
    cdef bint readout = h >= syn.n_rec
    cdef bint adaptive = False, carry
    cdef bint each = opt.optimize_each_step[mdl] != 0
    cdef real_t w = syn.weight[k], zbar, ebar, ereg, eps, G, z, e, g, psi, L
    cdef real_t alpha, kappa = 0.0, kreg = 0.0, beta = 0.0, rho = 0.0
    if readout:
        alpha = out.P_v_m[h - syn.n_rec]
    else:
        alpha = rec.P_v_m[h]
        kappa = rec.kappa[h]
        kreg = rec.kappa_reg[h]
        adaptive = rec.model[h] == M_IAF_ADAPT or rec.model[h] == M_DELTA_ADAPT
        beta = rec.adapt_beta[h]
        rho = rec.P_adapt[h]
    if sp != 0:
        isi = s - sp
        if syn.previous_was_flush[k]:
            rem = syn.remaining_steps_until_cutoff[k]
        else:
            rem = hs.isi_trace_cutoff[h]
            syn.gradient[k] = 0.0
        n = rem if rem < isi else isi
        a = sp - syn.shift + 1
        zbar = syn.z_bar[k]
        ebar = syn.e_bar[k]
        ereg = syn.e_bar_reg[k]
        eps = syn.epsilon[k] if adaptive else 0.0
        G = syn.gradient[k]
        n_loop = n
        if n > 0 and not each and hs.fast_path and hs.fast_class[h] >= 0 and \
                a >= hs.front[h] and a + n <= hs.end[h] and (readout or a + n <= hs.prefix_done):
            if not adaptive:
                window_fast(hs, h, readout, alpha, kappa, kreg, a, n, zp, &zbar, &ebar, &ereg, &G)
                syn.n_fast_events += 1
                n_loop = 0
            elif window_adapt(hs, h, alpha, kappa, kreg, beta, rho, a, n, zp, &zbar, &ebar, &ereg,
                              &eps, &G):
                syn.n_fast_events += 1
                syn.n_fast_adaptive += 1
                n_loop = 0
        for i in range(n_loop):
            t = a + i
            z = <real_t>((zp >> i) & 1) if i < 64 else 0.0
            if t < 0:
                psi = 0.0
                L = 0.0
                g = 0.0
                zbar = alpha * zbar + z
            else:
                sl = t & hs.cmask
                if t < hs.front[h] or t >= hs.end[h] or not hs.valid[h, sl]:
                    hs.missing_t = t
                    hs.missing_tgt_lid = h
                    return -1
                zbar = alpha * zbar + z
                if readout:
                    g = hs.learning_signal[h, sl] * zbar
                else:
                    psi = hs.surrogate_gradient[h, sl]
                    if adaptive:
                        e = psi * (zbar - beta * eps)
                        eps = rho * eps + e
                    else:
                        e = psi * zbar
                    ebar = kappa * ebar + e
                    ereg = kreg * ereg + (1.0 - kreg) * e
                    g = hs.learning_signal[h, sl] * ebar + hs.firing_rate_reg[h, sl] * ereg
            if each:
                w = optimize(opt, k, mdl, t + 1, g, w)
            else:
                G += g
        syn.remaining_steps_until_cutoff[k] = <int32_t>(rem - n if rem - n < INT32_MAX else INT32_MAX)
        dec = syn.decay_steps[k] + isi - n
        # pending arrivals in the non-evaluated tail [n, isi) are carried to the first entry of
        # the next window (NEST's two-slot z buffer when the cutoff is shorter than 2 steps)
        carry = False
        if n < isi and n < 64:
            carry = ((zp >> n) & (((<uint64_t>1) << (isi - n)) - 1 if isi - n < 64 else ~(<uint64_t>0))) != 0
        zp = zp >> isi if isi < 64 else 0
        if carry:
            zp |= 1
        if not is_flush and dec > 0:
            zbar *= pow(alpha, <real_t>dec)
            if not readout:
                ebar *= pow(kappa, <real_t>dec)
                ereg *= pow(kreg, <real_t>dec)
                eps *= pow(rho, <real_t>dec)
            dec = 0
        syn.decay_steps[k] = <int32_t>dec
        syn.z_bar[k] = zbar
        syn.e_bar[k] = ebar
        syn.e_bar_reg[k] = ereg
        if adaptive:
            syn.epsilon[k] = eps
        syn.gradient[k] = G
        if not is_flush and not each:
            w = optimize(opt, k, mdl, s - 1, G, w)
    syn.weight[k] = w
    if settle:
        # the window is done and the next event reads no entry: drop this synapse's key
        update_dec(hs, h, sp)
        _release_front(hs, h, t_now)
        syn.previous_was_flush[k] = SETTLED
    else:
        # a settled synapse holds no key (NEST's erase with t_previous 0 = nothing to release)
        if syn.previous_was_flush[k] == SETTLED:
            sp = 0
        if hs.fast_only[h]:
            _erase_fast_only(hs, h, s, sp)
        else:
            hs.erase_used_history(h, s, sp, t_now)
        syn.previous_was_flush[k] = is_flush
    syn.t_spike_previous[k] = <int32_t>s
    if not is_flush:
        zp |= (<uint64_t>1) << (syn.shift + syn.delay[k] - 2)
    syn.z_pending[k] = zp
    return 0


cdef inline void prefetch_target(EpropSynapses syn, History hs, int64_t k, int64_t s) noexcept nogil:
    """Ask the cache for what send(k, s) will read of the target's history rows: the prefix rows
    before and at the end of the window, its first entries, the update-history counts.  A hint
    only (no result depends on it)."""
    cdef int64_t h = syn.tgt_lid[k], sp = syn.t_spike_previous[k], cmask = hs.cmask, a, n, c
    if sp == 0:
        return
    a = sp - syn.shift + 1
    n = s - sp
    c = hs.isi_trace_cutoff[h]
    if c < n:
        n = c
    if hs.fast_path and hs.fast_class[h] >= 0 and not (h < syn.n_rec and (
            syn.rec.model[h] == M_IAF_ADAPT or syn.rec.model[h] == M_DELTA_ADAPT)):
        # prefix rows (72 bytes: two lines each); adaptive targets read the rings (window_adapt)
        eprop_prefetch(&hs.prefix[(a - 1) & cmask, h, 0])
        eprop_prefetch(&hs.prefix[(a - 1) & cmask, h, 8])
        eprop_prefetch(&hs.prefix[a & cmask, h, 0])
        eprop_prefetch(&hs.prefix[a & cmask, h, 8])
        eprop_prefetch(&hs.prefix[(a + n - 1) & cmask, h, 0])
        eprop_prefetch(&hs.prefix[(a + n - 1) & cmask, h, 8])
    else:
        eprop_prefetch(&hs.surrogate_gradient[h, a & cmask])
        eprop_prefetch(&hs.learning_signal[h, a & cmask])
        eprop_prefetch(&hs.firing_rate_reg[h, a & cmask])
    eprop_prefetch(&hs.update_count[h, sp & cmask])
    eprop_prefetch(&hs.update_count[h, s & cmask])


cdef inline void _erase_fast_only(History hs, int64_t h, int64_t s, int64_t sp) noexcept nogil:
    """History.erase_used_history(h, s, sp, .) for a fast-only target, inline: its steps 1, 2a and 3
    (the middle erasure 2b is skipped for these targets), the same operations."""
    cdef int64_t keep, key
    update_inc(hs, h, s)
    if sp > 0:
        update_dec(hs, h, sp)
    if hs.n_entries[h] > 0 and hs.n_update_keys[h] > 0:
        keep = hs.first_update_key[h] - hs.shift + 1
        if hs.front[h] < keep < hs.end[h] and hs.valid[h, keep & hs.cmask]:
            for key in range(hs.front[h], keep):
                if hs.valid[h, key & hs.cmask]:
                    hs.valid[h, key & hs.cmask] = 0
                    hs.n_entries[h] -= 1
            hs.front[h] = keep


cdef inline void _release_front(History hs, int64_t h, int64_t W) noexcept nogil:
    """After a settle onto fast-only target h at the window start W: drop the entries before the
    first pending window (erase_used_history's step 3); with no key left, the entries before
    W - shift + 1 (the earliest window a later event opens starts at W + 2 - shift, and entries
    below W - d_ro have their complete learning signal, so no prefix sum changes)."""
    cdef int64_t keep, key
    if hs.n_entries[h] == 0:
        return
    if hs.n_update_keys[h] > 0:
        keep = hs.first_update_key[h] - hs.shift + 1
    else:
        keep = W - hs.shift + 1
    if keep > hs.end[h]:
        keep = hs.end[h]
    if keep <= hs.front[h]:
        return
    for key in range(hs.front[h], keep):
        if hs.valid[h, key & hs.cmask]:
            hs.valid[h, key & hs.cmask] = 0
            hs.n_entries[h] -= 1
    hs.front[h] = keep


cdef inline int64_t _settle_stamp(EpropSynapses syn, History hs, Optimizer opt, int64_t k,
                                  int64_t W) noexcept nogil:
    """Stamp f of the internal flush that settles synapse k at the window start W, or 0: its
    cutoff ended (f = t_spike_previous + remaining cutoff <= W, so every later event comes after
    f), all of its window's entries exist with complete learning signals, and the fast path
    applies (fast-only target, per-spike optimizer)."""
    cdef int64_t sp = syn.t_spike_previous[k], h, rem, a
    if sp == 0 or syn.previous_was_flush[k] == SETTLED:
        return 0
    h = syn.tgt_lid[k]
    if not hs.fast_only[h] or hs.fast_class[h] < 0 or opt.optimize_each_step[syn.syn_model[k]] != 0:
        return 0
    rem = syn.remaining_steps_until_cutoff[k] if syn.previous_was_flush[k] else hs.isi_trace_cutoff[h]
    if rem >= INT32_MAX or rem >= EPROP_INF_STEPS or sp + rem > W:
        return 0
    a = sp - syn.shift + 1
    if a < hs.front[h] or a + rem > hs.end[h] or (h < syn.n_rec and a + rem > hs.prefix_done):
        return 0
    return sp + rem


cdef inline int _settle(EpropSynapses syn, History hs, Optimizer opt, RecurrentNeurons rec,
                        Readouts out, int64_t W) noexcept nogil:
    """Internal flush (issue 8, SPEC 10.4): every synapse whose cutoff window is over runs it now,
    as a flush event with stamp f would (same operations, so the same numbers: the next event then
    finds no entry to evaluate and applies the summed gradient as before), and gives up its
    update-history key, so a silent source pins no history.  Rows are checked at their first
    synapse (a row's synapses share their events); O(rows) per SETTLE_EVERY steps plus O(1) per settle."""
    cdef int64_t r, k, f, h, n_rows = syn.indptr.shape[0] - 1
    if not hs.fast_path or W < syn.settle_next:
        return 0
    # a scan every SETTLE_EVERY steps: reading each row's first synapse is a cache miss per row, and
    # settling later changes no number (the ring keeps up to SETTLE_EVERY more entries)
    syn.settle_next = W + SETTLE_EVERY
    # targets without a pending window (every source settled or silent from the start) keep no
    # entries before W - shift + 1 either (checked once per 64 steps of their history: O(n_h / 64))
    for h in range(hs.front.shape[0]):
        if hs.fast_only[h] and hs.n_update_keys[h] == 0 and hs.n_entries[h] > 0 and \
                hs.front[h] + 64 + hs.shift < W:
            _release_front(hs, h, W)
    for r in range(n_rows):
        if syn.indptr[r] == syn.indptr[r + 1] or _settle_stamp(syn, hs, opt, syn.indptr[r], W) == 0:
            continue
        for k in range(syn.indptr[r], syn.indptr[r + 1]):
            f = _settle_stamp(syn, hs, opt, k, W)
            if f != 0 and _send(syn, hs, opt, rec, out, k, f, True, W, True) != 0:
                return -1
            if f != 0:
                syn.n_settled += 1
    return 0


cdef inline int _send_row(EpropSynapses syn, History hs, Optimizer opt, RecurrentNeurons rec,
                          Readouts out, int64_t k0, int64_t k1, int64_t s, bint is_flush,
                          int64_t t_now) noexcept nogil:
    """_send for the synapses k0 .. k1-1 of one source row, in order, each target's rows
    prefetched PREFETCH_AHEAD synapses ahead.  Returns 0, or -1 (missing history entry)."""
    cdef int64_t k, j
    for j in range(k0, k0 + PREFETCH_AHEAD if k0 + PREFETCH_AHEAD < k1 else k1):
        prefetch_target(syn, hs, j, s)
    for k in range(k0, k1):
        if k + PREFETCH_AHEAD < k1:
            prefetch_target(syn, hs, k + PREFETCH_AHEAD, s)
        if _send(syn, hs, opt, rec, out, k, s, is_flush, t_now) != 0:
            return -1
    return 0


cdef class EpropSynapses:

    cdef int send(self, int64_t k, int64_t s, bint is_flush, int64_t t_now) noexcept nogil:
        """Event with stamp s (flush event: is_flush) at synapse k (see _send)."""
        return _send(self, self.history, self.optimizer, self.rec, self.out, k, s, is_flush, t_now)

    cdef int send_row(self, int64_t k0, int64_t k1, int64_t s, bint is_flush, int64_t t_now) noexcept nogil:
        """send(k, s, is_flush, t_now) for k = k0 .. k1-1 in this order (see _send_row)."""
        return _send_row(self, self.history, self.optimizer, self.rec, self.out, k0, k1, s, is_flush, t_now)

    cdef int settle(self, int64_t W) noexcept nogil:
        """See _settle (Core.deliver, after the spikes of the window start W)."""
        return _settle(self, self.history, self.optimizer, self.rec, self.out, W)
