# Compiled core of eprop-dist: one rank's neurons, histories and incoming synapses.
#
# The window loop (DESIGN 1, SPEC 10.2) runs here:
#   per communication window of D steps starting at step W:
#     1. deliver learning signals of the last window (readout errors of iterations W-D..W-1)
#     2. process the spikes of the last window through local synapses, in (stamp, source gid) order
#        (e-prop gradient window, optimizer, then transmission of the updated weight)
#     3. advance recurrent neurons, parrots and readouts D steps
#     4. return EXCHANGE to the Python layer (MPI) or loop on (serial run)
# `run` is resumable at step boundaries: it returns GROW when a buffer needs more room and the
# Python layer (eprop_dist/state.py) reallocates and calls it again.  Kernels never allocate.
#
# Index spaces: `tid` = local target index: recurrent [0, n_rec), readouts [n_rec, n_rec+n_out),
# parrots [n_rec+n_out, n_tgt).  Histories are indexed by tid (recurrent and readouts only).
# A spike is an int64 key plus a multiplicity (0 = flush event).  The key orders spikes by delivery
# time, then gid: key = (2*stamp - dev) << 31 | gid, dev = 1 for devices (spike generators), which
# NEST delivers during iteration stamp-1, before the neuron spikes of the same stamp (SPEC 0.4).
cimport cython
from libc.math cimport exp, sqrt, fabs, pow
from libc.stdlib cimport qsort
from libc.stdint cimport int64_t, int32_t, int16_t, uint64_t, uint8_t, INT32_MAX
from rng cimport u01, poisson_count
from _typedefs cimport gid_t, lid_t, real_t, step_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC


cdef inline double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec

cdef extern from *:
    """
    #define EPROP_INF_STEPS ((long long)1 << 60)
    """
    long long EPROP_INF_STEPS

INF_STEPS = EPROP_INF_STEPS

# ---- status codes returned by Core.run, grow reasons (bit mask in Core.grow_what) ----------
cdef enum:
    DONE = 0
    EXCHANGE = 1
    GROW = 2
    ERR_HISTORY = 3
    GROW_HISTORY = 1
    GROW_SAMPLES = 2
    GROW_SPIKEREC = 4
    GROW_WEIGHTREC = 8
    GROW_INCOMING = 16

STATUS = {"DONE": DONE, "EXCHANGE": EXCHANGE, "GROW": GROW, "ERR_HISTORY": ERR_HISTORY}
GROW_REASONS = {"history": GROW_HISTORY, "samples": GROW_SAMPLES, "spikerec": GROW_SPIKEREC,
                "weightrec": GROW_WEIGHTREC, "incoming": GROW_INCOMING}

# recurrent model codes (eprop_dist/models: REC_MODELS order)
cdef enum:
    M_IAF = 0
    M_IAF_ADAPT = 1
    M_DELTA = 2
    M_DELTA_ADAPT = 3
    M_BSS = 4           # eprop_iaf_bsshslm_2020
    M_BSS_ADAPT = 5     # eprop_iaf_adapt_bsshslm_2020

# surrogate gradient codes
cdef enum:
    SG_PWL = 0
    SG_EXP = 1
    SG_FSIG = 2
    SG_ATAN = 3

# recordable field codes (multimeter)
cdef enum:
    F_VM = 0
    F_SG = 1
    F_LS = 2
    F_HD = 3
    F_ADAPT = 4
    F_VTHA = 5
    F_YOUT = 6
    F_TGT = 7
    F_ERR = 8
    F_YUN = 9

# optimizer codes
cdef enum:
    OPT_GD = 0
    OPT_ADAM = 1

cdef int64_t GID_MASK = 0x7FFFFFFF


cdef inline int64_t crem(int64_t a, int64_t b) noexcept nogil:
    """C++ remainder (sign of the dividend), as NEST's bsshslm interval logic uses it."""
    return a % b     # cdivision=True: C semantics


cdef inline int64_t key_stamp(int64_t key) noexcept nogil:
    return ((key >> 31) + 1) >> 1


def spike_key(stamp, gid, device=False):
    """Encode a spike (NumPy arrays or scalars) as the core's sort key."""
    return ((2 * stamp - (1 if device else 0)) << 31) | gid


def key_to_stamp_gid(key):
    """Decode core spike keys (NumPy int64 arrays) into (stamp, gid)."""
    return ((key >> 31) + 1) >> 1, key & 0x7FFFFFFF


cdef int _cmp_spike(const void* a, const void* b) noexcept nogil:
    """Order spikes (key, mult) by key, i.e. by (delivery time, gid)."""
    cdef int64_t x = (<const int64_t*>a)[0]
    cdef int64_t y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef inline real_t surrogate(int kind, int64_t r, real_t v, real_t v_th, real_t h, real_t w) noexcept nogil:
    """SPEC 1.3, x = v - v_th; all four are 0 while refractory (r > 0)."""
    cdef real_t x
    if r > 0:
        return 0.0
    x = v - v_th
    if kind == SG_PWL:
        x = 1.0 - fabs(x) / w
        return h * x if x > 0.0 else 0.0
    elif kind == SG_EXP:
        return h * exp(-fabs(x) / w)
    elif kind == SG_FSIG:
        return h * pow(1.0 + fabs(x) / w, -2.0)
    else:
        return h / (1.0 + (x / w) * (x / w))


cdef class Core:
    # ---- sizes and time ----
    cdef public int64_t t                 # next iteration to compute
    cdef public int64_t D                 # communication window in steps (= min delay)
    cdef public int64_t shift             # learning-signal shift d_ro + d_or (NEST: 2)
    cdef public int64_t d_ro              # delay recurrent -> readout (entry = readout iteration - d_ro)
    cdef public int64_t RL                # input ring length (>= max delay + D)
    cdef public int n_rec, n_out, n_par, n_tgt
    cdef public real_t dt
    cdef public bint delivered            # deliveries of the window starting at t are done
    cdef public int grow_what
    cdef public int64_t err_t, err_h      # missing history entry (for ERR_HISTORY)

    # ---- recurrent neurons: parameters (IN) ----
    cdef public int32_t[::1] rec_model, rec_sg, rec_R, rec_ias, rec_refr_input
    cdef public int64_t[::1] rec_flush, rec_ias_offset, rec_ias_interval
    cdef public real_t[::1] rec_Pv, rec_Pi, rec_Vth, rec_Vmin, rec_Vreset, rec_Ie, rec_EL
    cdef public real_t[::1] rec_beta, rec_rho, rec_creg, rec_ftarget, rec_kappa, rec_kreg
    cdef public real_t[::1] rec_sgh, rec_sgw, rec_tau
    # ---- recurrent neurons: state (INOUT) ----
    cdef public real_t[::1] rec_v, rec_i, rec_a, rec_A, rec_fav, rec_psi, rec_b
    cdef public int64_t[::1] rec_r, rec_last, rec_iasc, rec_nspk
    cdef public real_t[::1] rec_Pz                        # bsshslm: P_z_in (1 or 1 - alpha)
    cdef public uint8_t[::1] rec_z
    # ---- readouts ----
    cdef public real_t[::1] out_Pv, out_Pi, out_Vmin, out_Ie, out_EL
    cdef public real_t[::1] out_v, out_i, out_y, out_ystar, out_err, out_lw
    # bsshslm readouts: P_z_in, loss (0 MSE, 1 CE), u (unnormalised signal), CE normaliser inputs
    cdef public real_t[::1] out_Pz, out_u, u_all          # u_all: (n_out_global,) u of the last step
    cdef public int32_t[::1] out_ce
    cdef public real_t[:, ::1] u_loc                      # (D, n_out) u of this window
    cdef public int64_t[::1] ro_ptr                       # readout -> readout rate connections (CSR by
    cdef public int32_t[::1] ro_src                       #   local readout; source = global readout index)
    cdef public real_t[::1] ro_w
    # ---- bsshslm family (SPEC 5): kernel settings ----
    cdef public bint bss
    cdef public int64_t T_int, LW, rec_ls_shift          # update interval, learning window (steps)
    cdef public bint reset_on_update
    cdef public real_t[:, ::1] h_fr                       # firing-rate regulariser per interval q % FRC
    cdef public int64_t FRC
    cdef public int32_t[::1] out_tgen, out_lwgen          # rate generator index or -1
    cdef public uint8_t[::1] out_tlag, out_lwlag          # 1: generator updates after the readout
    cdef public real_t[::1] out_tw, out_lww               # rate connection weights
    # ---- parrots ----
    cdef public int64_t[::1] par_flush, par_last
    # ---- gids, recording flags ----
    cdef public int64_t[::1] tgt_gid                      # (n_tgt,) gid of each tid
    cdef public uint8_t[::1] spk_recorded                 # (n_tgt,) 1: a spike recorder listens
    # ---- rate generators (step_rate_generator), replicated on every rank ----
    cdef public int64_t[::1] rg_indptr, rg_times          # times in steps (amplitude_times/dt)
    cdef public real_t[::1] rg_values
    # ---- input ring buffers ----
    cdef public real_t[:, ::1] ring                       # (n_tgt, RL)
    # ---- histories (rec + readouts), ring of capacity C indexed by key % C ----
    cdef public int64_t C
    cdef public real_t[:, ::1] h_psi, h_L, h_F
    cdef public uint8_t[:, ::1] h_valid
    cdef public int32_t[:, ::1] h_upd                     # update-history counters by stamp % C
    cdef public int64_t[::1] h_front, h_end, h_count, h_ulo, h_nupd
    cdef public uint8_t[::1] h_has
    cdef public int64_t[::1] h_cut                        # eprop_isi_trace_cutoff in steps
    # ---- sources: gid -> row of the CSRs (-1: no local synapse) ----
    cdef public int32_t[::1] src_row
    # ---- static synapses (CSR by source row) ----
    cdef public int64_t[::1] st_ptr
    cdef public int32_t[::1] st_tgt, st_delay
    cdef public real_t[::1] st_w
    cdef public uint64_t[::1] st_pkey                     # poisson rows: stream key of the connection
    # ---- poisson generators (replicated devices; an independent train per connection, SPEC 10.1) --
    cdef public int32_t[::1] pg_rows                      # source rows that are poisson generators
    cdef public int64_t[::1] pg_gid, pg_start, pg_stop    # gid, active for start < stamp <= stop
    cdef public real_t[::1] pg_lambda                     # expected spikes per step (rate*dt/1000)
    cdef public uint64_t seed
    # ---- e-prop synapses (CSR by source row) ----
    cdef public int64_t[::1] ep_ptr
    # per-synapse state is kept narrow (bytes per synapse matter at 1e8 synapses): stamps and step
    # counts in int32 (runs < 2^31 steps), delay int16, model uint8; ep_eps is empty when no target is
    # adaptive and the Adam arrays are empty when no synapse model uses Adam
    cdef public int32_t[::1] ep_tgt
    cdef public int16_t[::1] ep_delay
    cdef public uint8_t[::1] ep_model
    cdef public real_t[::1] ep_w, ep_zbar, ep_ebar, ep_ereg, ep_eps, ep_G
    cdef public int32_t[::1] ep_tprev, ep_rem, ep_decay
    cdef public uint8_t[::1] ep_pflush
    cdef public uint64_t[::1] ep_zpend
    cdef public real_t[::1] ep_cum, ep_eta, ep_m, ep_v, ep_b1p, ep_b2p
    # bsshslm synapse state (empty arrays for e-prop+ networks)
    cdef public int32_t[::1] bs_tpu, bs_tnu, bs_tfirst, bs_wp
    cdef public uint8_t[::1] bs_open
    cdef public real_t[::1] bs_sume, bs_gacc, bs_kappa
    cdef public int32_t[::1] ep_ostep
    # ---- optimizer common properties per synapse model (IN) ----
    cdef public int32_t[::1] opt_type, opt_each, opt_wrec, opt_avg
    cdef public int64_t[::1] opt_batch, opt_etacount
    cdef public real_t[::1] opt_eta, opt_wmin, opt_wmax, opt_b1, opt_b2, opt_epsv, opt_eta1
    # ---- learning-signal connections (CSR by global readout index) ----
    cdef public int64_t[::1] ls_ptr
    cdef public int32_t[::1] ls_tgt
    cdef public real_t[::1] ls_w
    cdef public real_t[:, ::1] err_all                    # (D, n_out_global) errors of last window
    cdef public real_t[:, ::1] err_loc                    # (D, n_out) errors of this window
    # ---- spike generators, replicated: sorted keys ----
    cdef public int64_t[::1] gen_keys
    cdef public int64_t gen_pos
    # ---- spikes: outgoing of this window, incoming for delivery ----
    cdef public int64_t[::1] out_buf                      # (2*cap) pairs key, mult
    cdef public int64_t n_outgoing
    cdef public int64_t[::1] in_buf
    cdef public int64_t n_incoming
    # ---- recording buffers ----
    cdef public int32_t[::1] mm_start, mm_stop, mm_interval   # per multimeter, in steps
    cdef public int32_t[::1] sl_mm, sl_tid, sl_field          # per recording slot
    cdef public int64_t[::1] sl_ptr                           # slots of tid: CSR over tids
    cdef public int32_t[::1] sl_order                         # slot ids grouped by tid
    cdef public int64_t[::1] smp_t
    cdef public int32_t[::1] smp_slot
    cdef public real_t[::1] smp_v
    cdef public int64_t n_samples
    cdef public int64_t[::1] sr_key                           # spike record (stamp<<32|gid)
    cdef public int32_t[::1] sr_mult
    cdef public int64_t n_spikerec
    cdef public int64_t[::1] wr_stamp, wr_src, wr_tgt
    cdef public int32_t[::1] wr_id
    cdef public real_t[::1] wr_w
    cdef public int64_t n_wrec
    cdef public bint any_wrec
    # ---- counters ----
    cdef public int64_t n_syn_events, n_ep_events
    cdef public double t_deliver, t_eprop, t_update

    def __init__(self):
        self.t = 0
        self.delivered = False
        self.grow_what = 0
        self.n_outgoing = 0
        self.n_incoming = 0
        self.n_samples = 0
        self.n_spikerec = 0
        self.n_wrec = 0
        self.gen_pos = 0
        self.n_syn_events = 0
        self.n_ep_events = 0
        self.t_deliver = 0.0
        self.t_eprop = 0.0
        self.t_update = 0.0

    # ========================================================================================
    # optimizer (SPEC 3.4)
    # ========================================================================================
    cdef inline real_t optimize(self, int64_t k, int64_t idx, real_t g, real_t w) noexcept nogil:
        """W <- OPT(idx, g, W) for e-prop synapse k (SPEC 3.4), incl. learning-rate lag,
        batching by integer idx, Adam catch-up (gradient in the first pass only), clipping."""
        cdef int mdl = self.ep_model[k]
        cdef int64_t bs = self.opt_batch[mdl]
        cdef int64_t cur, step
        cdef real_t cum, a, b1 = self.opt_b1[mdl], b2 = self.opt_b2[mdl]
        if self.opt_etacount[mdl] != 0 and self.ep_ostep[k] == 1:
            self.ep_eta[k] = self.opt_eta1[mdl]
        cum = self.ep_cum[k] + g
        cur = 1 + idx // bs
        if self.ep_ostep[k] < cur:
            cum = cum / bs
            if self.opt_type[mdl] == OPT_GD:
                w -= self.ep_eta[k] * cum
                cum = 0.0
            else:
                for step in range(self.ep_ostep[k], cur):
                    self.ep_b1p[k] *= b1
                    self.ep_b2p[k] *= b2
                    a = self.ep_eta[k] * sqrt(1.0 - self.ep_b2p[k]) / (1.0 - self.ep_b1p[k])
                    self.ep_m[k] = b1 * self.ep_m[k] + (1.0 - b1) * cum
                    self.ep_v[k] = b2 * self.ep_v[k] + (1.0 - b2) * cum * cum
                    w -= a * self.ep_m[k] / (sqrt(self.ep_v[k]) + self.opt_epsv[mdl])
                    cum = 0.0
            if w < self.opt_wmin[mdl]:
                w = self.opt_wmin[mdl]
            if w > self.opt_wmax[mdl]:
                w = self.opt_wmax[mdl]
            self.ep_eta[k] = self.opt_eta[mdl]
            self.ep_ostep[k] = <int32_t>cur
        self.ep_cum[k] = cum
        return w

    # ========================================================================================
    # history bookkeeping (SPEC 1.5, generalised with shift = d_ro + d_or)
    # ========================================================================================
    cdef inline void h_erase(self, int64_t h, int64_t key) noexcept nogil:
        cdef int64_t sl = key % self.C
        if self.h_valid[h, sl]:
            self.h_valid[h, sl] = 0
            self.h_count[h] -= 1

    cdef inline void h_fix_front(self, int64_t h) noexcept nogil:
        while self.h_front[h] < self.h_end[h] and not self.h_valid[h, self.h_front[h] % self.C]:
            self.h_front[h] += 1

    cdef inline void upd_fix_lo(self, int64_t h) noexcept nogil:
        if self.h_nupd[h] == 0:
            self.h_ulo[h] = self.h_end[h]
            return
        while self.h_upd[h, self.h_ulo[h] % self.C] == 0:
            self.h_ulo[h] += 1

    cdef inline void upd_inc(self, int64_t h, int64_t key) noexcept nogil:
        """Update history of target h: one more synapse whose last event has ring key `key`."""
        cdef int64_t sl = key % self.C
        if self.h_upd[h, sl] == 0:
            self.h_nupd[h] += 1
            if self.h_nupd[h] == 1 or key < self.h_ulo[h]:
                self.h_ulo[h] = key
        self.h_upd[h, sl] += 1

    cdef inline void upd_dec(self, int64_t h, int64_t key) noexcept nogil:
        """One synapse fewer at `key` (not below 0); a key whose count reaches 0 is removed."""
        cdef int64_t sl = key % self.C
        if self.h_upd[h, sl] > 0:
            self.h_upd[h, sl] -= 1
            if self.h_upd[h, sl] == 0:
                self.h_nupd[h] -= 1
                self.upd_fix_lo(h)

    cdef void erase_used_history(self, int64_t h, int64_t s, int64_t sp) noexcept nogil:
        """NEST's erase_used_eprop_history(t_spike=s, t_prev=sp) for target history h."""
        cdef int64_t c = self.h_cut[h], cb, ce, eb, ee, u, ulo, uhi, rb, re, keep, key
        # 1. count the new stamp
        self.upd_inc(h, s)
        if sp > 0:
            # 2a. release the previous stamp
            self.upd_dec(h, sp)
            # 2b. erase the part of the previous window that no other pending window needs
            cb = sp - self.shift + 1
            ce = cb + c if c < EPROP_INF_STEPS else EPROP_INF_STEPS
            eb = cb
            ee = ce
            ulo = cb - c if c < EPROP_INF_STEPS else self.h_ulo[h]
            if ulo < self.h_ulo[h]:
                ulo = self.h_ulo[h]
            # keys whose needed range [u - shift + 1, ...) starts inside [cb, ce]: u <= ce + shift - 2
            # (NEST, shift 2: u <= ce)
            uhi = ce + self.shift - 2 if ce < EPROP_INF_STEPS else EPROP_INF_STEPS
            if uhi > self.t + 1:
                uhi = self.t + 1
            u = ulo
            while u <= uhi and eb < ee:
                if self.h_upd[h, u % self.C] > 0:
                    rb = u - self.shift + 1
                    re = rb + c if c < EPROP_INF_STEPS else EPROP_INF_STEPS
                    if cb <= rb <= ce and rb < ee:
                        ee = rb
                    if cb <= re <= ce and re > eb:
                        eb = re
                u += 1
            if eb < self.h_front[h]:
                eb = self.h_front[h]
            if ee > self.h_end[h]:
                ee = self.h_end[h]
            key = eb
            while key < ee:
                self.h_erase(h, key)
                key += 1
            self.h_fix_front(h)
        # 3. drop everything before the first pending window
        if self.h_count[h] > 0 and self.h_nupd[h] > 0:
            keep = self.h_ulo[h] - self.shift + 1
            if self.h_front[h] < keep < self.h_end[h] and self.h_valid[h, keep % self.C]:
                key = self.h_front[h]
                while key < keep:
                    self.h_erase(h, key)
                    key += 1
                self.h_front[h] = keep

    # ========================================================================================
    # e-prop synapse send() (SPEC 3.2, generalised: shift, delay d -> z pipeline bit d+shift-2)
    # ========================================================================================
    cdef int ep_send(self, int64_t k, int64_t s, bint is_flush) noexcept nogil:
        cdef int64_t h = self.ep_tgt[k]
        cdef int64_t sp = self.ep_tprev[k]
        cdef int64_t isi, rem, n, a, i, t, sl, dec
        cdef uint64_t zp = self.ep_zpend[k]
        cdef bint readout = h >= self.n_rec
        cdef bint adaptive = False, carry
        cdef bint each = self.opt_each[self.ep_model[k]] != 0
        cdef real_t w = self.ep_w[k], zbar, ebar, ereg, eps, G, z, e, g, psi, L
        cdef real_t alpha, kappa = 0.0, kreg = 0.0, beta = 0.0, rho = 0.0
        if readout:
            alpha = self.out_Pv[h - self.n_rec]
        else:
            alpha = self.rec_Pv[h]
            kappa = self.rec_kappa[h]
            kreg = self.rec_kreg[h]
            adaptive = self.rec_model[h] == M_IAF_ADAPT or self.rec_model[h] == M_DELTA_ADAPT
            beta = self.rec_beta[h]
            rho = self.rec_rho[h]
        if sp != 0:
            isi = s - sp
            if self.ep_pflush[k]:
                rem = self.ep_rem[k]
            else:
                rem = self.h_cut[h]
                self.ep_G[k] = 0.0
            n = rem if rem < isi else isi
            a = sp - self.shift + 1
            zbar = self.ep_zbar[k]
            ebar = self.ep_ebar[k]
            ereg = self.ep_ereg[k]
            eps = self.ep_eps[k] if adaptive else 0.0
            G = self.ep_G[k]
            for i in range(n):
                t = a + i
                z = <real_t>((zp >> i) & 1) if i < 64 else 0.0
                if t < 0:
                    psi = 0.0
                    L = 0.0
                    g = 0.0
                    zbar = alpha * zbar + z
                else:
                    sl = t % self.C
                    if t < self.h_front[h] or t >= self.h_end[h] or not self.h_valid[h, sl]:
                        self.err_t = t
                        self.err_h = h
                        return -1
                    zbar = alpha * zbar + z
                    if readout:
                        g = self.h_L[h, sl] * zbar
                    else:
                        psi = self.h_psi[h, sl]
                        if adaptive:
                            e = psi * (zbar - beta * eps)
                            eps = rho * eps + e
                        else:
                            e = psi * zbar
                        ebar = kappa * ebar + e
                        ereg = kreg * ereg + (1.0 - kreg) * e
                        g = self.h_L[h, sl] * ebar + self.h_F[h, sl] * ereg
                if each:
                    w = self.optimize(k, t + 1, g, w)
                else:
                    G += g
            self.ep_rem[k] = <int32_t>(rem - n if rem - n < INT32_MAX else INT32_MAX)
            dec = self.ep_decay[k] + isi - n
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
            self.ep_decay[k] = <int32_t>dec
            self.ep_zbar[k] = zbar
            self.ep_ebar[k] = ebar
            self.ep_ereg[k] = ereg
            if adaptive:
                self.ep_eps[k] = eps
            self.ep_G[k] = G
            if not is_flush and not each:
                w = self.optimize(k, s - 1, G, w)
        self.ep_w[k] = w
        self.erase_used_history(h, s, sp)
        self.ep_tprev[k] = <int32_t>s
        self.ep_pflush[k] = is_flush
        if not is_flush:
            zp |= (<uint64_t>1) << (self.shift + self.ep_delay[k] - 2)
        self.ep_zpend[k] = zp
        return 0

    # ========================================================================================
    # bsshslm synapse (SPEC 5.3).  NEST keeps the presynaptic ISIs of an update interval and runs
    # compute_gradient over [t_first, t_next_update + shift) at the first event after the interval.
    # Here the same recursion runs incrementally: at each event the entries whose learning signal is
    # complete are processed (same floating-point sequence), and only the z marks of the last
    # entries stay pending (bit mask bs relative to bs_wp).  Readout entries are stored at ring key
    # = logical key + 1 (logical key t-1 holds the error of iteration t).
    # ========================================================================================
    cdef inline int bss_entry(self, int64_t k, int64_t h, int64_t t, bint readout, real_t z) noexcept nogil:
        """One entry t (logical key) of the bsshslm compute_gradient loop."""
        cdef int64_t key = t + 1 if readout else t
        cdef int64_t sl, lid
        cdef real_t e, zbar
        if key < 0 or key < self.h_front[h] or key >= self.h_end[h] or not self.h_valid[h, key % self.C]:
            self.err_t = t
            self.err_h = h
            return -1
        sl = key % self.C
        if readout:
            lid = h - self.n_rec
            zbar = self.out_Pv[lid] * self.ep_zbar[k] + self.out_Pz[lid] * z
            self.ep_zbar[k] = zbar
            self.bs_gacc[k] += self.h_L[h, sl] * zbar
        else:
            zbar = self.rec_Pv[h] * self.ep_zbar[k] + self.rec_Pz[h] * z
            self.ep_zbar[k] = zbar
            if self.rec_model[h] == M_BSS_ADAPT:
                e = self.h_psi[h, sl] * (zbar - self.rec_beta[h] * self.ep_eps[k])
                self.ep_eps[k] = self.rec_rho[h] * self.ep_eps[k] + e
            else:
                e = self.h_psi[h, sl] * zbar
            self.ep_ebar[k] = self.bs_kappa[k] * self.ep_ebar[k] + (1.0 - self.bs_kappa[k]) * e
            self.bs_gacc[k] += self.h_L[h, sl] * self.ep_ebar[k]
            self.bs_sume[k] += e
        return 0

    cdef inline int bss_process(self, int64_t k, int64_t h, bint readout, int64_t upto) noexcept nogil:
        """Process entries [bs_wp, upto) with the pending z marks."""
        cdef int64_t t = self.bs_wp[k]
        cdef uint64_t zp = self.ep_zpend[k]
        while t < upto:
            if self.bss_entry(k, h, t, readout, <real_t>(zp & 1)) != 0:
                return -1
            zp >>= 1
            t += 1
        if t > self.bs_wp[k]:
            self.bs_wp[k] = <int32_t>t
        self.ep_zpend[k] = zp
        return 0

    cdef inline void bss_move_key(self, int64_t h, int64_t old, int64_t new) noexcept nogil:
        """Update history of a bsshslm target: one count moves from ring key old to ring key new."""
        self.upd_inc(h, new)
        self.upd_dec(h, old)

    cdef void bss_prune(self, int64_t h, int64_t roff, int64_t sh) noexcept nogil:
        """At an interval start: erase the intervals between the first and last update key that are
        not keys, then everything before the first key (SPEC 5.5)."""
        cdef int64_t kmin, kmax, q, key, T = self.T_int
        if not self.h_has[h] or self.h_count[h] == 0 or self.h_nupd[h] == 0:
            return
        kmin = self.h_ulo[h]
        kmax = kmin
        q = kmin
        while q <= self.h_end[h]:
            if self.h_upd[h, q % self.C] > 0:
                kmax = q
            q += T
        q = kmin
        while q <= kmax:
            if self.h_upd[h, q % self.C] == 0:
                key = q if q > self.h_front[h] else self.h_front[h]
                while key < q + T and key < self.h_end[h]:
                    self.h_erase(h, key)
                    key += 1
            q += T
        key = self.h_front[h]
        while key < kmin and key < self.h_end[h]:
            self.h_erase(h, key)
            key += 1
        self.h_fix_front(h)
        if self.h_count[h] == 0:
            self.h_front[h] = self.h_end[h]

    cdef int bss_send(self, int64_t k, int64_t s) noexcept nogil:
        """send() of eprop_synapse_bsshslm_2020 for a spike with stamp s.  Returns 1: transmit,
        0: dropped (first step of a recurrent interval), -1: missing history entry."""
        cdef int64_t h = self.ep_tgt[k], T = self.T_int
        cdef bint readout = h >= self.n_rec
        cdef int64_t sh = 3 if readout else 2
        cdef int64_t roff = 1 if readout else 0
        cdef int64_t lag = 1 if readout else 2
        cdef int64_t tsp = self.ep_tprev[k], E, isi, idx, t_cur, upto, q
        cdef real_t grad, fr
        # quirk (SPEC 5.3, 9.8): a spike whose stamp is the first step of a recurrent interval is
        # dropped: neither transmitted nor counted (C++ remainder: negative for s < sh)
        if not readout and crem(s - sh, T) == 0:
            return 0
        if self.bs_tfirst[k] == 0:
            self.bs_tfirst[k] = <int32_t>s
            self.bs_wp[k] = <int32_t>s
            self.ep_zpend[k] = 0
        E = self.bs_tnu[k] + sh
        if tsp > 0:
            isi = (s if s < E else E) - (tsp if tsp < E else E)
            if isi > 0:
                self.bs_open[k] = 1
        if s > E:
            idx = (s - sh) // T
            t_cur = idx * T
            self.bss_move_key(h, self.bs_tpu[k] + sh + roff, t_cur + sh + roff)
            if self.bs_open[k] and tsp > 0:
                if self.bss_process(k, h, readout, E) != 0:
                    return -1
                grad = self.bs_gacc[k]
                if not readout:
                    q = (self.bs_tpu[k] + T) // T
                    fr = self.h_fr[h, q % self.FRC]
                    grad += fr * self.bs_sume[k]
                if self.opt_avg[self.ep_model[k]]:
                    grad /= <real_t>self.LW
                self.ep_G[k] += grad
            self.ep_w[k] = self.optimize(k, idx, self.ep_G[k], self.ep_w[k])
            self.ep_G[k] = 0.0
            self.bs_tpu[k] = <int32_t>t_cur
            self.bs_tnu[k] = <int32_t>(t_cur + T)
            self.bs_tfirst[k] = <int32_t>s
            # a new window opens at s: traces restart at 0, z = 1 at its first entry
            self.bs_wp[k] = <int32_t>s
            self.ep_zpend[k] = 1
            self.ep_zbar[k] = 0.0
            self.ep_ebar[k] = 0.0
            if self.ep_eps.shape[0]:
                self.ep_eps[k] = 0.0
            self.bs_gacc[k] = 0.0
            self.bs_sume[k] = 0.0
            self.bs_open[k] = 0
        else:
            upto = s - lag
            if upto > E:
                upto = E
            if upto > self.bs_wp[k] and self.bss_process(k, h, readout, upto) != 0:
                return -1
            if s < E and s >= self.bs_wp[k] and s - self.bs_wp[k] < 64:
                self.ep_zpend[k] |= (<uint64_t>1) << (s - self.bs_wp[k])
        self.ep_tprev[k] = <int32_t>s
        return 1

    # ========================================================================================
    # delivery at a window start W = self.t
    # ========================================================================================
    cdef int deliver(self) noexcept nogil:
        cdef int64_t W = self.t, D = self.D, i, j, u, e, kk, p, q, s, gid, row, mult, m, need
        cdef int64_t n_gen = 0, gp
        cdef int st
        cdef real_t err, val, lam
        cdef long cnt
        cdef double t0
        cdef int64_t n_out_g = self.err_all.shape[1]
        # -- capacity of the weight recorder (checked before anything is appended: devices never
        #    have e-prop synapses, so the neuron spikes already in in_buf decide)
        need = 0
        for i in range(self.n_incoming if self.any_wrec else 0):
            gid = self.in_buf[2 * i] & GID_MASK
            mult = self.in_buf[2 * i + 1]
            if gid < self.src_row.shape[0] and self.src_row[gid] >= 0 and mult > 0:
                row = self.src_row[gid]
                for p in range(self.ep_ptr[row], self.ep_ptr[row + 1]):
                    if self.opt_wrec[self.ep_model[p]] >= 0:
                        need += mult
        if self.n_wrec + need > self.wr_w.shape[0]:
            self.grow_what = GROW_WEIGHTREC
            return GROW
        # -- capacity: generator spikes with stamps in (W-D, W] join the incoming list, and one
        #    pseudo-event (mult -1) per poisson generator and stamp
        gp = self.gen_pos
        while gp < self.gen_keys.shape[0] and key_stamp(self.gen_keys[gp]) <= W:
            gp += 1
            n_gen += 1
        if 2 * (self.n_incoming + n_gen + D * self.pg_rows.shape[0]) > self.in_buf.shape[0]:
            self.grow_what = GROW_INCOMING
            return GROW
        for i in range(n_gen):
            self.in_buf[2 * (self.n_incoming + i)] = self.gen_keys[self.gen_pos + i]
            self.in_buf[2 * (self.n_incoming + i) + 1] = 1
        self.n_incoming += n_gen
        self.gen_pos = gp
        for i in range(self.pg_rows.shape[0]):
            for s in range(W - D + 1, W + 1):
                if self.pg_start[i] < s <= self.pg_stop[i]:
                    self.in_buf[2 * self.n_incoming] = ((2 * s - 1) << 31) | self.pg_gid[i]
                    self.in_buf[2 * self.n_incoming + 1] = -1 - i
                    self.n_incoming += 1
        # -- 1. learning signals: entry u - d_ro += B_jk err_k(u), readouts in ascending gid
        if W > 0:
            for i in range(D):
                u = W - D + i
                e = u - self.d_ro
                for kk in range(n_out_g):
                    err = self.err_all[i, kk]
                    for p in range(self.ls_ptr[kk], self.ls_ptr[kk + 1]):
                        j = self.ls_tgt[p]
                        val = self.ls_w[p] * err
                        if e >= 0 and self.h_has[j]:
                            if self.h_front[j] <= e < self.h_end[j] and self.h_valid[j, e % self.C]:
                                self.h_L[j, e % self.C] += val
            # deferred learning_signal samples of the last window, NEST's recordable (SPEC 1.2 step 8):
            # L of the first existing entry with key >= u - shift; an entry newer than u - shift had
            # not received its signal in iteration u, and pruning happens only after this point.
            for i in range(D):
                u = W - D + i
                for p in range(self.sl_mm.shape[0]):
                    if self.sl_field[p] == F_LS and self.samples_at(self.sl_mm[p], u):
                        j = self.sl_tid[p]
                        e = u - self.rec_ls_shift
                        val = 0.0
                        if self.h_has[j] and self.h_count[j] > 0:
                            if e < self.h_front[j]:
                                e = self.h_front[j]
                            while e < self.h_end[j] and not self.h_valid[j, e % self.C]:
                                e += 1
                            if e == u - self.rec_ls_shift and e < self.h_end[j]:
                                val = self.h_L[j, e % self.C]
                        self.smp_t[self.n_samples] = u
                        self.smp_slot[self.n_samples] = <int32_t>p
                        self.smp_v[self.n_samples] = val
                        self.n_samples += 1
        # -- 2. spikes of the last window in canonical (stamp, gid) order
        qsort(&self.in_buf[0], self.n_incoming, 2 * sizeof(int64_t), _cmp_spike)
        for i in range(self.n_incoming):
            s = key_stamp(self.in_buf[2 * i])
            gid = self.in_buf[2 * i] & GID_MASK
            mult = self.in_buf[2 * i + 1]
            if gid >= self.src_row.shape[0] or self.src_row[gid] < 0:
                continue
            row = self.src_row[gid]
            if mult < 0:
                # poisson generator: an independent count per connection, keyed (seed, gid, conn, stamp)
                lam = self.pg_lambda[-1 - mult]
                for p in range(self.st_ptr[row], self.st_ptr[row + 1]):
                    cnt = poisson_count(lam, u01(self.seed, <uint64_t>gid, self.st_pkey[p], <uint64_t>s))
                    if cnt > 0:
                        q = self.st_tgt[p]
                        if q >= self.n_rec + self.n_out:
                            self.ring[q, (s + self.st_delay[p] - 1) % self.RL] += cnt
                        else:
                            self.ring[q, (s + self.st_delay[p] - 1) % self.RL] += cnt * self.st_w[p]
                        self.n_syn_events += cnt
                continue
            if mult == 0:
                if self.bss:      # bsshslm neurons send no flush events (SPEC 5: memory only)
                    continue
                for p in range(self.ep_ptr[row], self.ep_ptr[row + 1]):
                    if self.ep_send(p, s, True) != 0:
                        return ERR_HISTORY
                continue
            for m in range(mult):
                for p in range(self.st_ptr[row], self.st_ptr[row + 1]):
                    q = self.st_tgt[p]
                    if q >= self.n_rec + self.n_out:
                        self.ring[q, (s + self.st_delay[p] - 1) % self.RL] += 1.0
                    else:
                        self.ring[q, (s + self.st_delay[p] - 1) % self.RL] += self.st_w[p]
                self.n_syn_events += self.st_ptr[row + 1] - self.st_ptr[row]
                t0 = now()
                for p in range(self.ep_ptr[row], self.ep_ptr[row + 1]):
                    if self.bss:
                        st = self.bss_send(p, s)
                        if st < 0:
                            return ERR_HISTORY
                        if st == 0:
                            continue
                    elif self.ep_send(p, s, False) != 0:
                        return ERR_HISTORY
                    q = self.ep_tgt[p]
                    self.ring[q, (s + self.ep_delay[p] - 1) % self.RL] += self.ep_w[p]
                    if self.opt_wrec[self.ep_model[p]] >= 0:
                        self.wr_stamp[self.n_wrec] = s
                        self.wr_src[self.n_wrec] = gid
                        self.wr_tgt[self.n_wrec] = self.tgt_gid[q]
                        self.wr_w[self.n_wrec] = self.ep_w[p]
                        self.wr_id[self.n_wrec] = self.opt_wrec[self.ep_model[p]]
                        self.n_wrec += 1
                self.n_ep_events += self.ep_ptr[row + 1] - self.ep_ptr[row]
                self.t_eprop += now() - t0
        self.n_incoming = 0
        return 0

    cdef inline bint samples_at(self, int64_t mm, int64_t t) noexcept nogil:
        """A multimeter samples iteration t iff start < (t+1) <= stop (steps) on its interval grid."""
        return self.mm_start[mm] < t + 1 <= self.mm_stop[mm] and (t + 1) % self.mm_interval[mm] == 0

    cdef inline real_t rate_value(self, int64_t g, int64_t key) noexcept nogil:
        """Value of rate generator g after its update in iteration key-1 (amplitude time <= key)."""
        cdef int64_t lo = self.rg_indptr[g], hi = self.rg_indptr[g + 1], mid
        if hi == lo or self.rg_times[lo] > key:
            return 0.0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.rg_times[mid] <= key:
                lo = mid
            else:
                hi = mid
        return self.rg_values[lo]

    cdef inline void record(self, int64_t t, int64_t tid, int field, real_t val) noexcept nogil:
        cdef int64_t p, sl
        for p in range(self.sl_ptr[tid], self.sl_ptr[tid + 1]):
            sl = self.sl_order[p]
            if self.sl_field[sl] == field and self.samples_at(self.sl_mm[sl], t):
                self.smp_t[self.n_samples] = t
                self.smp_slot[self.n_samples] = <int32_t>sl
                self.smp_v[self.n_samples] = val
                self.n_samples += 1

    cdef inline void emit(self, int64_t t, int64_t tid, int64_t mult) noexcept nogil:
        cdef int64_t key = ((2 * (t + 1)) << 31) | self.tgt_gid[tid]
        self.out_buf[2 * self.n_outgoing] = key
        self.out_buf[2 * self.n_outgoing + 1] = mult
        self.n_outgoing += 1
        if mult > 0 and self.spk_recorded[tid]:
            self.sr_key[self.n_spikerec] = key
            self.sr_mult[self.n_spikerec] = <int32_t>mult
            self.n_spikerec += 1

    cdef inline void h_append(self, int64_t h, int64_t t, real_t psi, real_t F) noexcept nogil:
        cdef int64_t sl = t % self.C
        self.h_psi[h, sl] = psi
        self.h_L[h, sl] = 0.0
        self.h_F[h, sl] = F
        self.h_valid[h, sl] = 1
        if self.h_count[h] == 0:
            self.h_front[h] = t
        self.h_count[h] += 1
        self.h_end[h] = t + 1
        if self.h_nupd[h] == 0:
            self.h_ulo[h] = t + 1

    # ========================================================================================
    # one iteration t of all local nodes
    # ========================================================================================
    cdef void step(self, int64_t t) noexcept nogil:
        cdef int64_t j, slot = t % self.RL, lid
        cdef int model
        cdef real_t zin, v, psi, F, thr, y, ystar, err, lw
        cdef bint spike, ias_spike
        cdef int64_t w_idx = t % self.D
        if self.bss:
            self.step_rec_bss(t)
        # ---- recurrent neurons (SPEC 1.2) ----
        for j in range(0 if self.bss else self.n_rec):
            model = self.rec_model[j]
            zin = self.ring[j, slot]
            self.ring[j, slot] = 0.0
            v = self.rec_v[j]
            ias_spike = False
            if self.rec_ias[j]:
                self.rec_iasc[j] -= 1
                if self.rec_iasc[j] <= 0:
                    ias_spike = True
                    self.rec_iasc[j] = self.rec_ias_interval[j]
            if model == M_IAF or model == M_IAF_ADAPT:
                if self.rec_r[j] > 0:
                    self.rec_r[j] -= 1
                v = self.rec_Pi[j] * self.rec_i[j] + zin + self.rec_Pv[j] * v
                if v < self.rec_Vmin[j]:
                    v = self.rec_Vmin[j]
                thr = self.rec_Vth[j]
                if model == M_IAF_ADAPT:
                    self.rec_a[j] = self.rec_rho[j] * self.rec_a[j] + self.rec_z[j]
                    self.rec_A[j] = self.rec_Vth[j] + self.rec_beta[j] * self.rec_a[j]
                    thr = self.rec_A[j]
                self.rec_z[j] = 0
                psi = surrogate(self.rec_sg[j], self.rec_r[j], v, thr, self.rec_sgh[j], self.rec_sgw[j])
                if self.rec_ias[j]:
                    spike = ias_spike
                else:
                    spike = v >= thr and self.rec_r[j] == 0
                if spike:
                    self.rec_z[j] = 1
                    v = v - self.rec_Vth[j]
                    self.rec_r[j] = self.rec_R[j]
            else:
                if self.rec_r[j] == 0:
                    v = (self.rec_Pi[j] * (self.rec_i[j] + self.rec_Ie[j]) + self.rec_Pv[j] * v) + zin
                    if self.rec_refr_input[j] and self.rec_b[j] != 0.0:
                        v = v + self.rec_b[j]
                        self.rec_b[j] = 0.0
                    if v < self.rec_Vmin[j]:
                        v = self.rec_Vmin[j]
                    if model == M_DELTA_ADAPT:
                        self.rec_a[j] = self.rec_rho[j] * self.rec_a[j] + self.rec_z[j]
                        self.rec_A[j] = self.rec_Vth[j] + self.rec_beta[j] * self.rec_a[j]
                else:
                    if self.rec_refr_input[j]:
                        self.rec_b[j] += zin * exp(-(<real_t>self.rec_r[j]) * self.dt / self.rec_tau[j])
                    self.rec_r[j] -= 1
                thr = self.rec_A[j] if model == M_DELTA_ADAPT else self.rec_Vth[j]
                self.rec_z[j] = 0
                psi = surrogate(self.rec_sg[j], self.rec_r[j], v, thr, self.rec_sgh[j], self.rec_sgw[j])
                if self.rec_ias[j]:
                    spike = ias_spike
                else:
                    spike = v >= thr
                if spike:
                    self.rec_r[j] = self.rec_R[j]
                    v = self.rec_Vreset[j]
                    self.rec_z[j] = 1
            self.rec_v[j] = v
            self.rec_psi[j] = psi
            if spike:
                self.rec_last[j] = t
                self.emit(t, j, 1)
            elif self.rec_last[j] > 0 and t - self.rec_last[j] >= self.rec_flush[j]:
                self.rec_last[j] = t
                self.emit(t, j, 0)
            # firing-rate regulariser (SPEC 1.4): f_av in spikes/ms, f_target*dt per step
            self.rec_fav[j] = self.rec_kreg[j] * self.rec_fav[j] + (1.0 - self.rec_kreg[j]) * self.rec_z[j] / self.dt
            F = self.rec_creg[j] * (self.rec_fav[j] - self.rec_ftarget[j] * self.dt)
            if self.h_has[j]:
                self.h_append(j, t, psi, F)
            if model == M_IAF or model == M_IAF_ADAPT:
                self.rec_i[j] = self.rec_Ie[j]
            else:
                self.rec_i[j] = 0.0
            if self.sl_ptr[j + 1] > self.sl_ptr[j]:
                self.record(t, j, F_VM, v + self.rec_EL[j])
                self.record(t, j, F_SG, psi)
                self.record(t, j, F_HD, self.h_count[j] * self.dt)
                self.record(t, j, F_ADAPT, self.rec_a[j])
                self.record(t, j, F_VTHA, self.rec_A[j] + self.rec_EL[j])
        # ---- parrots: re-emit what arrived, multiplicity = number of events ----
        for j in range(self.n_rec + self.n_out, self.n_tgt):
            lid = j - self.n_rec - self.n_out
            zin = self.ring[j, slot]
            self.ring[j, slot] = 0.0
            if zin > 0.0:
                self.par_last[lid] = t
                self.emit(t, j, <int64_t>(zin + 0.5))
            elif self.par_last[lid] > 0 and t - self.par_last[lid] >= self.par_flush[lid]:
                self.par_last[lid] = t
                self.emit(t, j, 0)
        if self.bss:
            self.step_out_bss(t)
        # ---- readouts (SPEC 2.2) ----
        for lid in range(0 if self.bss else self.n_out):
            j = self.n_rec + lid
            zin = self.ring[j, slot]
            self.ring[j, slot] = 0.0
            if self.out_tgen[lid] >= 0:
                self.out_ystar[lid] = self.out_tw[lid] * self.rate_value(self.out_tgen[lid], t if self.out_tlag[lid] else t + 1)
            if self.out_lwgen[lid] >= 0:
                self.out_lw[lid] = self.out_lww[lid] * self.rate_value(self.out_lwgen[lid], t if self.out_lwlag[lid] else t + 1)
            v = self.out_Pi[lid] * self.out_i[lid] + zin + self.out_Pv[lid] * self.out_v[lid]
            if v < self.out_Vmin[lid]:
                v = self.out_Vmin[lid]
            self.out_v[lid] = v
            lw = self.out_lw[lid]
            y = v + self.out_EL[lid]
            err = y - self.out_ystar[lid]
            self.out_ystar[lid] = self.out_ystar[lid] * lw
            y = y * lw
            err = err * lw
            self.out_y[lid] = y
            self.out_err[lid] = err
            if self.h_has[j]:
                self.h_append(j, t, 0.0, 0.0)
                self.h_L[j, t % self.C] = err
            self.err_loc[w_idx, lid] = err
            self.out_i[lid] = self.out_Ie[lid]
            if self.sl_ptr[j + 1] > self.sl_ptr[j]:
                self.record(t, j, F_VM, v + self.out_EL[lid])
                self.record(t, j, F_YOUT, y)
                self.record(t, j, F_TGT, self.out_ystar[lid])
                self.record(t, j, F_ERR, err)
                self.record(t, j, F_HD, self.h_count[j] * self.dt)

    cdef void step_rec_bss(self, int64_t t) noexcept nogil:
        """Iteration t of eprop_iaf(_adapt)_bsshslm_2020 (SPEC 5.2)."""
        cdef int64_t j, slot = t % self.RL, T = self.T_int, istep = crem(t - 2, T), q
        cdef real_t zin, v, thr, psi
        cdef bint adapt
        for j in range(self.n_rec):
            adapt = self.rec_model[j] == M_BSS_ADAPT
            zin = self.ring[j, slot]
            self.ring[j, slot] = 0.0
            if istep == 0:
                self.bss_prune(j, 0, 2)
                if self.reset_on_update:
                    self.rec_v[j] = 0.0
                    self.rec_r[j] = 0
                    self.rec_z[j] = 0
                    if adapt:
                        self.rec_a[j] = 0.0
            if self.rec_r[j] > 0:
                self.rec_r[j] -= 1
            v = (self.rec_Pi[j] * self.rec_i[j] + self.rec_Pz[j] * zin) + self.rec_Pv[j] * self.rec_v[j]
            v = v - self.rec_Vth[j] * self.rec_z[j]           # reset one step late (SPEC 5.2 step 4)
            if v < self.rec_Vmin[j]:
                v = self.rec_Vmin[j]
            thr = self.rec_Vth[j]
            if adapt:
                self.rec_a[j] = self.rec_rho[j] * self.rec_a[j] + self.rec_z[j]
                self.rec_A[j] = self.rec_Vth[j] + self.rec_beta[j] * self.rec_a[j]
                thr = self.rec_A[j]
            self.rec_z[j] = 0
            psi = surrogate(self.rec_sg[j], self.rec_r[j], v, thr, self.rec_sgh[j], self.rec_sgw[j])
            if v >= thr and self.rec_r[j] == 0:
                self.rec_nspk[j] += 1
                self.rec_z[j] = 1
                self.rec_r[j] = self.rec_R[j]
                self.rec_last[j] = t
                self.emit(t, j, 1)
            self.rec_v[j] = v
            self.rec_psi[j] = psi
            if self.h_has[j]:
                self.h_append(j, t, psi, 0.0)
            if istep == T - 1:
                # firing-rate regulariser of the interval, key t+1 (SPEC 5.2 step 10)
                if self.h_has[j]:
                    q = (t + 1 - 2) // T
                    self.h_fr[j, q % self.FRC] = self.rec_creg[j] * (
                        <real_t>self.rec_nspk[j] / <real_t>T - self.rec_ftarget[j] * self.dt) / <real_t>T
                self.rec_nspk[j] = 0
            self.rec_i[j] = self.rec_Ie[j]
            if self.sl_ptr[j + 1] > self.sl_ptr[j]:
                self.record(t, j, F_VM, v + self.rec_EL[j])
                self.record(t, j, F_SG, psi)
                self.record(t, j, F_HD, self.h_count[j] * self.dt)
                self.record(t, j, F_ADAPT, self.rec_a[j])
                self.record(t, j, F_VTHA, self.rec_A[j] + self.rec_EL[j])

    cdef void step_out_bss(self, int64_t t) noexcept nogil:
        """Iteration t of eprop_readout_bsshslm_2020 (SPEC 5.4): MSE, or softmax cross-entropy with
        the normaliser N = sum of the other readouts' u of the previous step (ascending gid)."""
        cdef int64_t lid, j, p, slot = t % self.RL, T = self.T_int
        cdef int64_t w_idx = t % self.D
        cdef real_t zin, v, y, u, err, N, ystar
        cdef bint reset = crem(t - 3, T) == 0
        # outside the learning window y* = y = err = 0; C++ remainder, negative (inside) for t < 4
        cdef bint outside = crem(t - 4, T) < T - self.LW
        for lid in range(self.n_out):
            j = self.n_rec + lid
            zin = self.ring[j, slot]
            self.ring[j, slot] = 0.0
            if reset:
                self.bss_prune(j, 1, 3)
                if self.reset_on_update:
                    self.out_v[lid] = 0.0
            if self.out_tgen[lid] >= 0:
                self.out_ystar[lid] = self.out_tw[lid] * self.rate_value(self.out_tgen[lid], t if self.out_tlag[lid] else t + 1)
            v = (self.out_Pi[lid] * self.out_i[lid] + self.out_Pz[lid] * zin) + self.out_Pv[lid] * self.out_v[lid]
            if v < self.out_Vmin[lid]:
                v = self.out_Vmin[lid]
            self.out_v[lid] = v
            ystar = self.out_ystar[lid]
            # quirk: the readout signal lags the voltage by one step (y uses u of the previous
            # iteration, SPEC 5.4); with cross-entropy it is the softmax of the previous voltages
            if self.out_ce[lid]:
                N = 0.0
                for p in range(self.ro_ptr[lid], self.ro_ptr[lid + 1]):
                    N += self.ro_w[p] * self.u_all[self.ro_src[p]]
                y = self.out_u[lid] / (N + self.out_u[lid])
                u = exp(v + self.out_EL[lid])
            else:
                y = self.out_u[lid]
                u = v + self.out_EL[lid]
            err = y - ystar
            if outside:
                ystar = 0.0
                y = 0.0
                err = 0.0
                self.out_ystar[lid] = 0.0
            self.out_u[lid] = u
            self.out_y[lid] = y
            self.out_err[lid] = err
            if self.h_has[j]:
                self.h_append(j, t, 0.0, 0.0)          # ring key t = logical key t-1
                self.h_L[j, t % self.C] = err
            self.err_loc[w_idx, lid] = err
            self.u_loc[w_idx, lid] = u
            self.out_i[lid] = self.out_Ie[lid]
            if self.sl_ptr[j + 1] > self.sl_ptr[j]:
                self.record(t, j, F_VM, v + self.out_EL[lid])
                self.record(t, j, F_YOUT, y)
                self.record(t, j, F_YUN, u)
                self.record(t, j, F_TGT, ystar)
                self.record(t, j, F_ERR, err)
                self.record(t, j, F_HD, self.h_count[j] * self.dt)

    cdef int check_capacity(self) noexcept nogil:
        """Before a window: room for D appends per history, samples, spike records."""
        cdef int64_t h, span, n_slots = self.sl_mm.shape[0]
        self.grow_what = 0
        for h in range(self.n_rec + self.n_out):
            if self.h_has[h]:
                span = self.h_end[h] - (self.h_front[h] if self.h_front[h] < self.h_ulo[h] else self.h_ulo[h])
                if span + self.D + 1 > self.C:
                    self.grow_what |= GROW_HISTORY
                    break
        if self.bss:
            for h in range(self.n_rec):
                if self.h_has[h] and self.h_nupd[h] > 0 and \
                        (self.t - self.h_ulo[h]) // self.T_int + 4 > self.FRC:
                    self.grow_what |= GROW_HISTORY
                    break
        if self.n_samples + 2 * n_slots * self.D > self.smp_v.shape[0]:
            self.grow_what |= GROW_SAMPLES
        if self.n_spikerec + self.n_tgt * self.D > self.sr_key.shape[0]:
            self.grow_what |= GROW_SPIKEREC
        return GROW if self.grow_what else 0

    def run(self, int64_t t_stop, bint serial):
        """Advance to step t_stop (a multiple of D).  Returns the status code."""
        cdef int st = 0
        cdef int64_t i, j
        cdef double t0
        with nogil:
            while True:
                if not self.delivered:
                    if self.t >= t_stop:
                        st = DONE
                        break
                    t0 = now()
                    st = self.deliver()
                    self.t_deliver += now() - t0
                    if st != 0:
                        break
                    self.delivered = True
                st = self.check_capacity()
                if st != 0:
                    break
                t0 = now()
                for i in range(self.D):
                    self.step(self.t)
                    self.t += 1
                self.t_update += now() - t0
                self.delivered = False
                if serial:
                    # every spike and readout is local: this window's output is the next delivery's input
                    for i in range(self.D):
                        for j in range(self.n_out):
                            self.err_all[i, j] = self.err_loc[i, j]
                    if self.bss:
                        for j in range(self.n_out):
                            self.u_all[j] = self.u_loc[self.D - 1, j]
                    for i in range(2 * self.n_outgoing):
                        self.in_buf[2 * self.n_incoming + i] = self.out_buf[i]
                    self.n_incoming += self.n_outgoing
                    self.n_outgoing = 0
                else:
                    st = EXCHANGE
                    break
        return st


def c_exp(const double[::1] x, double[::1] out):
    """out = exp(x) with the C library's exp (bit-identical to NEST's std::exp, unlike np.exp)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = exp(x[i])
