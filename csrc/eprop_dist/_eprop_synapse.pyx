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
from libc.math cimport pow
from libc.stdint cimport INT32_MAX
from eprop_dist._neurons cimport M_IAF_ADAPT, M_DELTA_ADAPT
from eprop_dist._optimizer cimport optimize


cdef inline int _send(EpropSynapses syn, History hs, Optimizer opt, RecurrentNeurons rec,
                      Readouts out, int64_t k, int64_t s, bint is_flush, int64_t t_now) noexcept nogil:
    """Event with stamp s (flush event: is_flush) at synapse k; t_now: first iteration of the
    window being delivered.  Returns 0, or -1 when a needed history entry is missing."""
    cdef int64_t h = syn.tgt_lid[k]
    cdef int64_t sp = syn.t_spike_previous[k]
    cdef int64_t isi, rem, n, a, i, t, sl, dec
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
        for i in range(n):
            t = a + i
            z = <real_t>((zp >> i) & 1) if i < 64 else 0.0
            if t < 0:
                psi = 0.0
                L = 0.0
                g = 0.0
                zbar = alpha * zbar + z
            else:
                sl = t % hs.capacity
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
    hs.erase_used_history(h, s, sp, t_now)
    syn.t_spike_previous[k] = <int32_t>s
    syn.previous_was_flush[k] = is_flush
    if not is_flush:
        zp |= (<uint64_t>1) << (syn.shift + syn.delay[k] - 2)
    syn.z_pending[k] = zp
    return 0


cdef class EpropSynapses:

    cdef int send(self, int64_t k, int64_t s, bint is_flush, int64_t t_now) noexcept nogil:
        """Event with stamp s (flush event: is_flush) at synapse k (see _send)."""
        return _send(self, self.history, self.optimizer, self.rec, self.out, k, s, is_flush, t_now)
