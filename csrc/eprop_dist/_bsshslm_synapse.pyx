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
from libc.stdint cimport uint64_t
from _typedefs cimport crem
from eprop_dist._neurons cimport M_BSS_ADAPT
from eprop_dist._history cimport update_inc, update_dec
from eprop_dist._optimizer cimport optimize


cdef inline int process_entry(BsshslmSynapses b, int64_t k, int64_t h, int64_t t, bint readout,
                              real_t z) noexcept nogil:
    """One entry t (logical key) of the bsshslm compute_gradient loop."""
    cdef int64_t key = t + 1 if readout else t
    cdef int64_t sl, lid
    cdef real_t e, zbar
    if key < 0 or key < b.history.front[h] or key >= b.history.end[h] or not b.history.valid[h, key % b.history.capacity]:
        b.history.missing_t = t
        b.history.missing_tgt_lid = h
        return -1
    sl = key % b.history.capacity
    if readout:
        lid = h - b.n_rec
        zbar = b.out.P_v_m[lid] * b.syn.z_bar[k] + b.out.P_z_in[lid] * z
        b.syn.z_bar[k] = zbar
        b.gradient_window[k] += b.history.learning_signal[h, sl] * zbar
    else:
        zbar = b.rec.P_v_m[h] * b.syn.z_bar[k] + b.rec.P_z_in[h] * z
        b.syn.z_bar[k] = zbar
        if b.rec.model[h] == M_BSS_ADAPT:
            e = b.history.surrogate_gradient[h, sl] * (zbar - b.rec.adapt_beta[h] * b.syn.epsilon[k])
            b.syn.epsilon[k] = b.rec.P_adapt[h] * b.syn.epsilon[k] + e
        else:
            e = b.history.surrogate_gradient[h, sl] * zbar
        b.syn.e_bar[k] = b.kappa[k] * b.syn.e_bar[k] + (1.0 - b.kappa[k]) * e
        b.gradient_window[k] += b.history.learning_signal[h, sl] * b.syn.e_bar[k]
        b.sum_e[k] += e
    return 0


cdef inline int process_entries(BsshslmSynapses b, int64_t k, int64_t h, bint readout,
                                int64_t upto) noexcept nogil:
    """Process entries [next_entry, upto) with the pending z marks."""
    cdef int64_t t = b.next_entry[k]
    cdef uint64_t zp = b.syn.z_pending[k]
    while t < upto:
        if process_entry(b, k, h, t, readout, <real_t>(zp & 1)) != 0:
            return -1
        zp >>= 1
        t += 1
    if t > b.next_entry[k]:
        b.next_entry[k] = <int32_t>t
    b.syn.z_pending[k] = zp
    return 0


cdef class BsshslmSynapses:

    cdef int send(self, int64_t k, int64_t s) noexcept nogil:
        """send() of eprop_synapse_bsshslm_2020 for a spike with stamp s.  Returns 1: transmit,
        0: dropped (first step of a recurrent interval), -1: missing history entry."""
        cdef int64_t h = self.syn.tgt_lid[k], T = self.update_interval
        cdef bint readout = h >= self.n_rec
        cdef int64_t sh = 3 if readout else 2
        cdef int64_t roff = 1 if readout else 0
        cdef int64_t lag = 1 if readout else 2
        cdef int64_t tsp = self.syn.t_spike_previous[k], E, isi, idx, t_cur, upto, q
        cdef real_t grad, fr
        # quirk (SPEC 5.3, 9.8): a spike whose stamp is the first step of a recurrent interval is
        # dropped: neither transmitted nor counted (C++ remainder: negative for s < sh)
        if not readout and crem(s - sh, T) == 0:
            return 0
        if self.t_first_spike[k] == 0:
            self.t_first_spike[k] = <int32_t>s
            self.next_entry[k] = <int32_t>s
            self.syn.z_pending[k] = 0
        E = self.t_next_update[k] + sh
        if tsp > 0:
            isi = (s if s < E else E) - (tsp if tsp < E else E)
            if isi > 0:
                self.window_open[k] = 1
        if s > E:
            idx = (s - sh) // T
            t_cur = idx * T
            # the update history count moves from the old interval's key to the new one
            update_inc(self.history, h, t_cur + sh + roff)
            update_dec(self.history, h, self.t_previous_update[k] + sh + roff)
            if self.window_open[k] and tsp > 0:
                if process_entries(self, k, h, readout, E) != 0:
                    return -1
                grad = self.gradient_window[k]
                if not readout:
                    q = (self.t_previous_update[k] + T) // T
                    fr = self.history.firing_rate_reg_interval[h, q % self.history.n_fr_intervals]
                    grad += fr * self.sum_e[k]
                if self.optimizer.average_gradient[self.syn.syn_model[k]]:
                    grad /= <real_t>self.learning_window
                self.syn.gradient[k] += grad
            self.syn.weight[k] = optimize(self.optimizer, k, self.syn.syn_model[k], idx, self.syn.gradient[k], self.syn.weight[k])
            self.syn.gradient[k] = 0.0
            self.t_previous_update[k] = <int32_t>t_cur
            self.t_next_update[k] = <int32_t>(t_cur + T)
            self.t_first_spike[k] = <int32_t>s
            # a new window opens at s: traces restart at 0, z = 1 at its first entry
            self.next_entry[k] = <int32_t>s
            self.syn.z_pending[k] = 1
            self.syn.z_bar[k] = 0.0
            self.syn.e_bar[k] = 0.0
            if self.syn.epsilon.shape[0]:
                self.syn.epsilon[k] = 0.0
            self.gradient_window[k] = 0.0
            self.sum_e[k] = 0.0
            self.window_open[k] = 0
        else:
            upto = s - lag
            if upto > E:
                upto = E
            if upto > self.next_entry[k] and process_entries(self, k, h, readout, upto) != 0:
                return -1
            if s < E and s >= self.next_entry[k] and s - self.next_entry[k] < 64:
                self.syn.z_pending[k] |= (<uint64_t>1) << (s - self.next_entry[k])
        self.syn.t_spike_previous[k] = <int32_t>s
        return 1
