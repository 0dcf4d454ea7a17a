# bsshslm synapse (SPEC 5.3).  NEST keeps the presynaptic ISIs of an update interval and runs
# compute_gradient over [t_first, t_next_update + shift) at the first event after the interval.
# Here the same recursion runs incrementally: at each event the entries whose learning signal is
# complete are processed (same floating-point sequence), and only the z marks of the last
# entries stay pending (bit mask z_pending relative to next_entry).  Readout entries are stored at
# ring key = logical key + 1 (logical key t-1 holds the error of iteration t).
#   recurrent: z_bar <- P_v_m z_bar + P_z_in z,  e = psi (z_bar - beta epsilon) (adaptive; epsilon
#              <- rho epsilon + e) or psi z_bar,  e_bar <- kappa e_bar + (1 - kappa) e,
#              gradient += L e_bar,  sum_e += e;  at the update: gradient + F_q sum_e
#   readout:   z_bar <- P_v_m z_bar + P_z_in z,  gradient += L z_bar
from libc.stdint cimport uint64_t, uint8_t
from _typedefs cimport crem

cdef extern from *:
    """
    #define eprop_ctz64(x) __builtin_ctzll(x)
    """
    int eprop_ctz64(uint64_t x) nogil
from eprop_dist._neurons cimport M_BSS_ADAPT
from eprop_dist._history cimport update_inc, update_dec
from eprop_dist._optimizer cimport optimize


cdef inline int process_entry(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k, int64_t h,
                              int64_t t, bint readout, real_t z) noexcept nogil:
    """One entry t (logical key) of the bsshslm compute_gradient loop."""
    cdef int64_t key = t + 1 if readout else t
    cdef int64_t sl, lid
    cdef real_t e, zbar
    if key < 0 or key < hs.front[h] or key >= hs.end[h] or not hs.valid[h, key & hs.cmask]:
        hs.missing_t = t
        hs.missing_tgt_lid = h
        return -1
    sl = key & hs.cmask
    if readout:
        lid = h - b.n_rec
        zbar = b.out.P_v_m[lid] * syn.z_bar[k] + b.out.P_z_in[lid] * z
        syn.z_bar[k] = zbar
        b.gradient_window[k] += hs.learning_signal[h, sl] * zbar
    else:
        zbar = b.rec.P_v_m[h] * syn.z_bar[k] + b.rec.P_z_in[h] * z
        syn.z_bar[k] = zbar
        if b.rec.model[h] == M_BSS_ADAPT:
            e = hs.surrogate_gradient[h, sl] * (zbar - b.rec.adapt_beta[h] * syn.epsilon[k])
            syn.epsilon[k] = b.rec.P_adapt[h] * syn.epsilon[k] + e
        else:
            e = hs.surrogate_gradient[h, sl] * zbar
        syn.e_bar[k] = b.kappa[k] * syn.e_bar[k] + (1.0 - b.kappa[k]) * e
        b.gradient_window[k] += hs.learning_signal[h, sl] * syn.e_bar[k]
        b.sum_e[k] += e
    return 0


cdef inline int process_entries_checked(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k,
                                        int64_t h, bint readout, int64_t upto) noexcept nogil:
    """Process entries [next_entry, upto) with the pending z marks, each entry checked (reports the
    first missing one)."""
    cdef int64_t t = b.next_entry[k]
    cdef uint64_t zp = syn.z_pending[k]
    while t < upto:
        if process_entry(b, syn, hs, k, h, t, readout, <real_t>(zp & 1)) != 0:
            return -1
        zp >>= 1
        t += 1
    if t > b.next_entry[k]:
        b.next_entry[k] = <int32_t>t
    syn.z_pending[k] = zp
    return 0


cdef inline int process_entries(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k,
                                int64_t h, bint readout, int64_t upto) noexcept nogil:
    """Process entries [next_entry, upto) with the pending z marks: process_entry's operations in
    the same order, in one loop per target kind over the target's ring rows (raw pointers, the
    model and readout branches and the range checks hoisted).  A range or valid-flag problem goes
    to process_entries_checked before any state is written, which reports the missing entry."""
    cdef int64_t roff = 1 if readout else 0
    cdef int64_t t0 = b.next_entry[k], key, key0, key1, cmask = hs.cmask, sl
    cdef uint64_t zp = syn.z_pending[k]
    cdef real_t alpha, Pz, zbar, kap, s1, E, eps, g, se, e, beta, rho
    cdef const real_t* psi_h
    cdef const real_t* L_h
    cdef const uint8_t* ok
    cdef bint adapt
    if upto <= t0:
        return 0
    key0 = t0 + roff
    key1 = upto + roff
    if key0 < 0 or key0 < hs.front[h] or key1 > hs.end[h]:
        return process_entries_checked(b, syn, hs, k, h, readout, upto)
    ok = &hs.valid[h, 0]
    for key in range(key0, key1):
        if not ok[key & cmask]:
            return process_entries_checked(b, syn, hs, k, h, readout, upto)
    L_h = &hs.learning_signal[h, 0]
    zbar = syn.z_bar[k]
    g = b.gradient_window[k]
    if readout:
        alpha = b.out.P_v_m[h - b.n_rec]
        Pz = b.out.P_z_in[h - b.n_rec]
        for key in range(key0, key1):
            zbar = alpha * zbar + Pz * <real_t>(zp & 1)
            zp >>= 1
            g += L_h[key & cmask] * zbar
    else:
        psi_h = &hs.surrogate_gradient[h, 0]
        alpha = b.rec.P_v_m[h]
        Pz = b.rec.P_z_in[h]
        kap = b.kappa[k]
        s1 = 1.0 - kap
        E = syn.e_bar[k]
        se = b.sum_e[k]
        adapt = b.rec.model[h] == M_BSS_ADAPT
        if adapt:
            beta = b.rec.adapt_beta[h]
            rho = b.rec.P_adapt[h]
            eps = syn.epsilon[k]
            for key in range(key0, key1):
                sl = key & cmask
                zbar = alpha * zbar + Pz * <real_t>(zp & 1)
                zp >>= 1
                e = psi_h[sl] * (zbar - beta * eps)
                eps = rho * eps + e
                E = kap * E + s1 * e
                g += L_h[sl] * E
                se += e
            syn.epsilon[k] = eps
        else:
            for key in range(key0, key1):
                sl = key & cmask
                zbar = alpha * zbar + Pz * <real_t>(zp & 1)
                zp >>= 1
                e = psi_h[sl] * zbar
                E = kap * E + s1 * e
                g += L_h[sl] * E
                se += e
        syn.e_bar[k] = E
        b.sum_e[k] = se
    syn.z_bar[k] = zbar
    b.gradient_window[k] = g
    b.next_entry[k] = <int32_t>upto
    syn.z_pending[k] = zp
    return 0


cdef inline bint _step_target(BsshslmSynapses b, History hs, int64_t h) noexcept nogil:
    """A recurrent target whose windows process_window runs on the step loop."""
    return h < b.n_rec and not (hs.fast_path and hs.fast_class[h] >= 0)


cdef inline int64_t _first_upto(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k,
                                int64_t s) noexcept nogil:
    """The end of the entries that send(k, s) will process first (before it changes any state), or
    0 when it processes none or the target is a readout or a fast-path target (see _send)."""
    cdef int64_t h = syn.tgt_lid[k], T = b.update_interval, E, tsp, isi, up
    cdef bint opened
    if not _step_target(b, hs, h) or crem(s - 2, T) == 0 or b.t_first_spike[k] == 0:
        return 0
    E = b.t_next_update[k] + 2
    tsp = syn.t_spike_previous[k]
    if s > E:
        opened = b.window_open[k]
        if tsp > 0:
            isi = (s if s < E else E) - (tsp if tsp < E else E)
            if isi > 0:
                opened = 1
        if not (opened and tsp > 0):
            return 0
        up = E
    else:
        up = s - 2
        if up > E:
            up = E
    return up if up > b.next_entry[k] else 0


cdef inline int process_pair(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t ka, int64_t kb,
                             int64_t upto) noexcept nogil:
    """process_entries for two synapses onto step-loop recurrent targets of one kind with the same
    entry range, interleaved (two independent recursions fill the FPU's latency; each one runs
    exactly process_entries' operations)."""
    cdef int64_t ha = syn.tgt_lid[ka], hb = syn.tgt_lid[kb], t0 = b.next_entry[ka], key, sl
    cdef int64_t cmask = hs.cmask
    cdef uint64_t zpa = syn.z_pending[ka], zpb = syn.z_pending[kb]
    cdef real_t aa, ab, Pza, Pzb, ka_, kb_, s1a, s1b, za, zb, Ea, Eb, ga, gb, sea, seb, ea, eb
    cdef real_t betaa, betab, rhoa, rhob, epsa, epsb
    cdef const real_t* psia
    cdef const real_t* psib
    cdef const real_t* La
    cdef const real_t* Lb
    cdef const uint8_t* oka
    cdef const uint8_t* okb
    if t0 < 0 or t0 < hs.front[ha] or t0 < hs.front[hb] or upto > hs.end[ha] or upto > hs.end[hb]:
        return -2
    oka = &hs.valid[ha, 0]
    okb = &hs.valid[hb, 0]
    for key in range(t0, upto):
        if not oka[key & cmask] or not okb[key & cmask]:
            return -2
    psia = &hs.surrogate_gradient[ha, 0]
    psib = &hs.surrogate_gradient[hb, 0]
    La = &hs.learning_signal[ha, 0]
    Lb = &hs.learning_signal[hb, 0]
    aa = b.rec.P_v_m[ha]
    ab = b.rec.P_v_m[hb]
    Pza = b.rec.P_z_in[ha]
    Pzb = b.rec.P_z_in[hb]
    ka_ = b.kappa[ka]
    kb_ = b.kappa[kb]
    s1a = 1.0 - ka_
    s1b = 1.0 - kb_
    za = syn.z_bar[ka]
    zb = syn.z_bar[kb]
    Ea = syn.e_bar[ka]
    Eb = syn.e_bar[kb]
    ga = b.gradient_window[ka]
    gb = b.gradient_window[kb]
    sea = b.sum_e[ka]
    seb = b.sum_e[kb]
    if b.rec.model[ha] == M_BSS_ADAPT:
        betaa = b.rec.adapt_beta[ha]
        betab = b.rec.adapt_beta[hb]
        rhoa = b.rec.P_adapt[ha]
        rhob = b.rec.P_adapt[hb]
        epsa = syn.epsilon[ka]
        epsb = syn.epsilon[kb]
        for key in range(t0, upto):
            sl = key & cmask
            za = aa * za + Pza * <real_t>(zpa & 1)
            zb = ab * zb + Pzb * <real_t>(zpb & 1)
            zpa >>= 1
            zpb >>= 1
            ea = psia[sl] * (za - betaa * epsa)
            eb = psib[sl] * (zb - betab * epsb)
            epsa = rhoa * epsa + ea
            epsb = rhob * epsb + eb
            Ea = ka_ * Ea + s1a * ea
            Eb = kb_ * Eb + s1b * eb
            ga += La[sl] * Ea
            gb += Lb[sl] * Eb
            sea += ea
            seb += eb
        syn.epsilon[ka] = epsa
        syn.epsilon[kb] = epsb
    else:
        for key in range(t0, upto):
            sl = key & cmask
            za = aa * za + Pza * <real_t>(zpa & 1)
            zb = ab * zb + Pzb * <real_t>(zpb & 1)
            zpa >>= 1
            zpb >>= 1
            ea = psia[sl] * za
            eb = psib[sl] * zb
            Ea = ka_ * Ea + s1a * ea
            Eb = kb_ * Eb + s1b * eb
            ga += La[sl] * Ea
            gb += Lb[sl] * Eb
            sea += ea
            seb += eb
    syn.z_bar[ka] = za
    syn.z_bar[kb] = zb
    syn.e_bar[ka] = Ea
    syn.e_bar[kb] = Eb
    b.gradient_window[ka] = ga
    b.gradient_window[kb] = gb
    b.sum_e[ka] = sea
    b.sum_e[kb] = seb
    b.next_entry[ka] = <int32_t>upto
    b.next_entry[kb] = <int32_t>upto
    syn.z_pending[ka] = zpa
    syn.z_pending[kb] = zpb
    return 0


cdef inline int process_quad(BsshslmSynapses b, EpropSynapses syn, History hs, const int64_t* ks,
                             int64_t upto) noexcept nogil:
    """process_pair for four synapses (fixed-size loops the compiler unrolls or vectorises; lanes
    are independent, so each synapse gets exactly process_entries' operations).  -2: a range or
    valid-flag problem, nothing written."""
    cdef int64_t t0 = b.next_entry[ks[0]], key, sl, j, h, cmask = hs.cmask
    cdef uint64_t zp[4]
    cdef real_t al[4]
    cdef real_t Pz[4]
    cdef real_t kp[4]
    cdef real_t s1[4]
    cdef real_t z[4]
    cdef real_t E[4]
    cdef real_t g[4]
    cdef real_t se[4]
    cdef real_t e[4]
    cdef real_t be[4]
    cdef real_t rh[4]
    cdef real_t ep[4]
    cdef const real_t* psi[4]
    cdef const real_t* L[4]
    cdef const uint8_t* ok[4]
    cdef bint adapt
    for j in range(4):
        h = syn.tgt_lid[ks[j]]
        if t0 < 0 or t0 < hs.front[h] or upto > hs.end[h]:
            return -2
        ok[j] = &hs.valid[h, 0]
    for key in range(t0, upto):
        sl = key & cmask
        if not (ok[0][sl] and ok[1][sl] and ok[2][sl] and ok[3][sl]):
            return -2
    adapt = b.rec.model[syn.tgt_lid[ks[0]]] == M_BSS_ADAPT
    for j in range(4):
        h = syn.tgt_lid[ks[j]]
        psi[j] = &hs.surrogate_gradient[h, 0]
        L[j] = &hs.learning_signal[h, 0]
        al[j] = b.rec.P_v_m[h]
        Pz[j] = b.rec.P_z_in[h]
        kp[j] = b.kappa[ks[j]]
        s1[j] = 1.0 - kp[j]
        z[j] = syn.z_bar[ks[j]]
        E[j] = syn.e_bar[ks[j]]
        g[j] = b.gradient_window[ks[j]]
        se[j] = b.sum_e[ks[j]]
        zp[j] = syn.z_pending[ks[j]]
        if adapt:
            be[j] = b.rec.adapt_beta[h]
            rh[j] = b.rec.P_adapt[h]
            ep[j] = syn.epsilon[ks[j]]
    if adapt:
        for key in range(t0, upto):
            sl = key & cmask
            for j in range(4):
                z[j] = al[j] * z[j] + Pz[j] * <real_t>(zp[j] & 1)
                zp[j] >>= 1
                e[j] = psi[j][sl] * (z[j] - be[j] * ep[j])
                ep[j] = rh[j] * ep[j] + e[j]
                E[j] = kp[j] * E[j] + s1[j] * e[j]
                g[j] += L[j][sl] * E[j]
                se[j] += e[j]
    else:
        for key in range(t0, upto):
            sl = key & cmask
            for j in range(4):
                z[j] = al[j] * z[j] + Pz[j] * <real_t>(zp[j] & 1)
                zp[j] >>= 1
                e[j] = psi[j][sl] * z[j]
                E[j] = kp[j] * E[j] + s1[j] * e[j]
                g[j] += L[j][sl] * E[j]
                se[j] += e[j]
    for j in range(4):
        syn.z_bar[ks[j]] = z[j]
        syn.e_bar[ks[j]] = E[j]
        b.gradient_window[ks[j]] = g[j]
        b.sum_e[ks[j]] = se[j]
        b.next_entry[ks[j]] = <int32_t>upto
        syn.z_pending[ks[j]] = zp[j]
        if adapt:
            syn.epsilon[ks[j]] = ep[j]
    return 0


cdef int64_t FAST_DIRECT = 8


cdef inline int process_entries_fast(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k,
                                     int64_t h, bint readout, int64_t upto) noexcept nogil:
    """process_entries in O(1 + n/B + #z) (SPEC 10.4 applied to SPEC 5.3), for a non-adaptive target
    with a fast class (History.fast_class; its kappa_reg slot holds 1, so prefix slot 3 is
    S_t = sum alpha^(u-b) psi_u).  Pieces [p, q] (ring keys) are cut at absolute block boundaries and
    before each pending z mark; in a piece z_bar = Z alpha^(t-p), Z = alpha z_bar_in + P_z_in z_p:
      recurrent: sum L e_bar = E k^(b-p+1) (R_q - R_{p-1}) + (1-k) Z alpha^(b-p) [(Q_q - Q_{p-1}) - A_{p-1} (R_q - R_{p-1})]
                 e_bar_q = k^(q-p+1) E + (1-k) Z k^(q-b) alpha^(b-p) (A_q - A_{p-1});  sum e = Z alpha^(b-p) (S_q - S_{p-1})
      readout:   sum L z_bar = Z alpha^(b-p) (R_q - R_{p-1})      (R = prefix slot 0, alpha-weighted errors)
    with k = kappa of the synapse (tau_m_readout).  Short pieces run process_entry's operations."""
    cdef int64_t roff = 1 if readout else 0
    cdef int64_t t0 = b.next_entry[k], n = upto - t0
    cdef int64_t key0 = t0 + roff, end, p, q, bb, jp, jq, nxt, zi, u, sl
    cdef int64_t cls = hs.fast_class[h], bmask, cmask = hs.cmask, pstride
    cdef uint64_t zp = syn.z_pending[k], zbits, rest
    cdef real_t alpha, Pz, kap, s1, Z, E, g, se, e, dR, Ap, Rp, Qp, Sp, am
    cdef const real_t* P
    cdef const real_t* Pq
    cdef const real_t* Pp
    cdef const real_t* T
    cdef const real_t* psi_h
    cdef const real_t* L_h
    if n <= 0:
        return 0
    if key0 < 0 or key0 < hs.front[h] or key0 + n > hs.end[h] or (not readout and upto > hs.prefix_done):
        return process_entries(b, syn, hs, k, h, readout, upto)
    bmask = hs.class_block[cls] - 1
    P = &hs.prefix[0, h, 0]
    pstride = hs.prefix.shape[1] * hs.prefix.shape[2]   # prefix is slot-major (capacity, n_h, 9)
    T = &hs.class_powers[cls, 0, 0]
    psi_h = &hs.surrogate_gradient[h, 0]
    L_h = &hs.learning_signal[h, 0]
    if readout:
        alpha = b.out.P_v_m[h - b.n_rec]
        Pz = b.out.P_z_in[h - b.n_rec]
    else:
        alpha = b.rec.P_v_m[h]
        Pz = b.rec.P_z_in[h]
    kap = b.kappa[k]
    s1 = 1.0 - kap
    Z = syn.z_bar[k]
    E = syn.e_bar[k]
    g = b.gradient_window[k]
    se = b.sum_e[k]
    zbits = zp if n >= 64 else zp & (((<uint64_t>1) << n) - 1)
    p = key0
    end = key0 + n
    while p < end:
        bb = p - (p & bmask)
        jp = p - bb
        q = bb + bmask
        if q > end - 1:
            q = end - 1
        zi = p - key0
        if zi < 64:
            Z = alpha * Z + Pz * <real_t>((zbits >> zi) & 1)
            rest = zbits >> (zi + 1) if zi < 63 else 0
            if rest:
                nxt = p + 1 + eprop_ctz64(rest)
                if nxt - 1 < q:
                    q = nxt - 1
        else:
            Z = alpha * Z + Pz * 0.0
        jq = q - bb
        if q - p < FAST_DIRECT:
            for u in range(p, q + 1):
                sl = u & cmask
                if u > p:
                    Z = alpha * Z + Pz * 0.0
                if readout:
                    g += L_h[sl] * Z
                else:
                    e = psi_h[sl] * Z
                    E = kap * E + s1 * e
                    g += L_h[sl] * E
                    se += e
            p = q + 1
            continue
        Pq = P + pstride * (q & cmask)
        Pp = P + pstride * ((p - 1) & cmask)
        am = T[65 + jp]                              # alpha^(b-p)
        if readout:
            Rp = Pp[0] if jp > 0 else 0.0
            g += Z * am * (Pq[0] - Rp)
        else:
            if jp > 0:
                Ap = Pp[0]
                Rp = Pp[1]
                Qp = Pp[2]
                Sp = Pp[3]
            else:
                Ap = 0.0
                Rp = 0.0
                Qp = 0.0
                Sp = 0.0
            dR = Pq[1] - Rp
            g += E * kap * T[3 * 65 + jp] * dR + s1 * Z * am * ((Pq[2] - Qp) - Ap * dR)
            E = T[2 * 65 + jq - jp + 1] * E + s1 * Z * T[2 * 65 + jq] * am * (Pq[0] - Ap)
            se += Z * am * (Pq[3] - Sp)
        Z = Z * T[jq - jp]
        p = q + 1
    syn.z_bar[k] = Z
    syn.e_bar[k] = E
    b.gradient_window[k] = g
    b.sum_e[k] = se
    b.next_entry[k] = <int32_t>upto
    syn.z_pending[k] = zp >> n if n < 64 else 0
    b.n_fast_windows += 1
    return 0


cdef inline int process_window(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k,
                               int64_t h, bint readout, int64_t upto) noexcept nogil:
    """Entries [next_entry, upto): the fast path where the target has a class, else the step loop."""
    if hs.fast_path and hs.fast_class[h] >= 0:
        return process_entries_fast(b, syn, hs, k, h, readout, upto)
    return process_entries(b, syn, hs, k, h, readout, upto)


cdef inline real_t window_gradient(BsshslmSynapses b, EpropSynapses syn, History hs, Optimizer opt,
                                   int64_t k, int64_t h, bint readout) noexcept nogil:
    """The finished window's gradient: sum L e_bar (+ F_q sum e for recurrent targets), divided by the
    learning window with average_gradient (SPEC 5.3)."""
    cdef int64_t T = b.update_interval, q
    cdef real_t grad = b.gradient_window[k]
    if not readout:
        q = (b.t_previous_update[k] + T) // T
        grad += hs.firing_rate_reg_interval[h, q % hs.n_fr_intervals] * b.sum_e[k]
    if opt.average_gradient[syn.syn_model[k]]:
        grad /= <real_t>b.learning_window
    return grad


cdef inline int _send(BsshslmSynapses b, EpropSynapses syn, History hs, Optimizer opt, int64_t k,
                      int64_t s) noexcept nogil:
    """send() of eprop_synapse_bsshslm_2020 for a spike with stamp s.  Returns 1: transmit,
    0: dropped (first step of a recurrent interval), -1: missing history entry."""
    cdef int64_t h = syn.tgt_lid[k], T = b.update_interval
    cdef bint readout = h >= b.n_rec
    cdef int64_t sh = 3 if readout else 2
    cdef int64_t roff = 1 if readout else 0
    cdef int64_t lag = 1 if readout else 2
    cdef int64_t tsp = syn.t_spike_previous[k], E, isi, idx, t_cur, upto
    # quirk (SPEC 5.3, 9.8): a spike whose stamp is the first step of a recurrent interval is
    # dropped: neither transmitted nor counted (C++ remainder: negative for s < sh)
    if not readout and crem(s - sh, T) == 0:
        return 0
    if b.t_first_spike[k] == 0:
        b.t_first_spike[k] = <int32_t>s
        b.next_entry[k] = <int32_t>s
        syn.z_pending[k] = 0
    E = b.t_next_update[k] + sh
    if tsp > 0:
        isi = (s if s < E else E) - (tsp if tsp < E else E)
        if isi > 0:
            b.window_open[k] = 1
    if s > E:
        idx = (s - sh) // T
        t_cur = idx * T
        # the update history count moves from the old interval's key to the new one
        update_inc(hs, h, t_cur + sh + roff)
        update_dec(hs, h, b.held_key[k])
        b.held_key[k] = <int32_t>(t_cur + sh + roff)
        if b.window_open[k] and tsp > 0:
            if process_window(b, syn, hs, k, h, readout, E) != 0:
                return -1
            syn.gradient[k] += window_gradient(b, syn, hs, opt, k, h, readout)
        syn.weight[k] = optimize(opt, k, syn.syn_model[k], idx, syn.gradient[k], syn.weight[k])
        syn.gradient[k] = 0.0
        b.t_previous_update[k] = <int32_t>t_cur
        b.t_next_update[k] = <int32_t>(t_cur + T)
        b.t_first_spike[k] = <int32_t>s
        # a new window opens at s: traces restart at 0, z = 1 at its first entry
        b.next_entry[k] = <int32_t>s
        syn.z_pending[k] = 1
        syn.z_bar[k] = 0.0
        syn.e_bar[k] = 0.0
        if syn.epsilon.shape[0]:
            syn.epsilon[k] = 0.0
        b.gradient_window[k] = 0.0
        b.sum_e[k] = 0.0
        b.window_open[k] = 0
    else:
        upto = s - lag
        if upto > E:
            upto = E
        if upto > b.next_entry[k] and process_window(b, syn, hs, k, h, readout, upto) != 0:
            return -1
        if s < E and s >= b.next_entry[k] and s - b.next_entry[k] < 64:
            syn.z_pending[k] |= (<uint64_t>1) << (s - b.next_entry[k])
    syn.t_spike_previous[k] = <int32_t>s
    return 1


cdef inline int _settle_one(BsshslmSynapses b, EpropSynapses syn, History hs, Optimizer opt, int64_t k,
                            int64_t t_now) noexcept nogil:
    """A synapse whose source fell silent: once every entry of its window is complete (t_now - lag
    >= E), compute the window's gradient now (the same operations the next spike would run; it waits
    in syn.gradient for that spike's optimizer call), and move its update-history key to the current
    interval, so that a silent source pins no history (SPEC 5.5 bookkeeping, memory only)."""
    cdef int64_t h = syn.tgt_lid[k], T = b.update_interval
    cdef bint readout = h >= b.n_rec
    cdef int64_t sh = 3 if readout else 2
    cdef int64_t roff = 1 if readout else 0
    cdef int64_t lag = 1 if readout else 2
    cdef int64_t tsp = syn.t_spike_previous[k], E = b.t_next_update[k] + sh, key
    if not hs.bsshslm_settle[h] or tsp > E or t_now - lag < E:
        return 0
    if tsp > 0 and (b.window_open[k] or tsp < E) and b.next_entry[k] < E:
        if process_window(b, syn, hs, k, h, readout, E) != 0:
            return -1
        syn.gradient[k] += window_gradient(b, syn, hs, opt, k, h, readout)
        # the next spike finds an empty window: it adds 0 and runs the optimizer on syn.gradient
        b.gradient_window[k] = 0.0
        b.sum_e[k] = 0.0
        b.window_open[k] = 0
    key = ((t_now - sh) // T) * T + sh + roff        # <= the key of any later spike of this source
    if key > b.held_key[k]:
        update_inc(hs, h, key)
        update_dec(hs, h, b.held_key[k])
        b.held_key[k] = <int32_t>key
    return 0


cdef inline int _prepare_row(BsshslmSynapses b, EpropSynapses syn, History hs, int64_t k0, int64_t k1,
                             int64_t s) noexcept nogil:
    """Before the sends of synapses k0..k1-1 (one source row) for a spike at s: the entries each
    send() would process first, four (or, at the row's end, two) synapses at a time where their
    targets run the step loop with the same range and kind (process_quad, process_pair); the
    sends then find them done.  The same operations per synapse as send() alone, so every number
    is unchanged.  Returns -1 when a needed history entry is missing."""
    cdef int64_t k, up, up_pend = 0, t_pend = 0, j
    cdef int64_t ks[4]
    cdef int n = 0, st
    cdef bint ad, ad_pend = 0
    for k in range(k0, k1):
        up = _first_upto(b, syn, hs, k, s)
        if up == 0:
            continue
        ad = b.rec.model[syn.tgt_lid[k]] == M_BSS_ADAPT
        if n > 0 and (up != up_pend or b.next_entry[k] != t_pend or ad != ad_pend):
            n = 0                      # not compatible with the group: restart it here
        if n == 0:
            up_pend = up
            t_pend = b.next_entry[k]
            ad_pend = ad
        ks[n] = k
        n += 1
        if n == 4:
            st = process_quad(b, syn, hs, ks, up)
            if st == -2:       # a range or valid-flag problem: one at a time (reports it)
                for j in range(4):
                    if process_entries(b, syn, hs, ks[j], syn.tgt_lid[ks[j]], False, up) != 0:
                        return -1
            n = 0
    if n >= 2:
        st = process_pair(b, syn, hs, ks[0], ks[1], up_pend)
        if st == -2:
            for j in range(2):
                if process_entries(b, syn, hs, ks[j], syn.tgt_lid[ks[j]], False, up_pend) != 0:
                    return -1
    return 0


cdef class BsshslmSynapses:

    cdef int settle(self, int64_t t_now) noexcept nogil:
        """Once per update interval (4 steps after its start, when the last window's learning signals
        are complete): settle the windows of silent sources (_settle_one).  Returns -1 when a needed
        history entry is missing."""
        cdef int64_t k, T = self.update_interval
        cdef int64_t start = ((t_now - 4) // T) * T
        if t_now < 4 or start <= self.settled_through:
            return 0
        self.settled_through = start
        for k in range(self.held_key.shape[0]):
            if _settle_one(self, self.syn, self.history, self.optimizer, k, t_now) != 0:
                return -1
        return 0

    cdef int prepare_row(self, int64_t k0, int64_t k1, int64_t s) noexcept nogil:
        """See _prepare_row."""
        return _prepare_row(self, self.syn, self.history, k0, k1, s)

    cdef int send(self, int64_t k, int64_t s) noexcept nogil:
        """See _send."""
        return _send(self, self.syn, self.history, self.optimizer, k, s)
