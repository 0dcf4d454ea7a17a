# Iteration t of the original-family neurons (SPEC 5.2) and readouts (SPEC 5.4).  State:
# _neurons.pxd; the update interval T is History.update_interval.
from libc.math cimport exp
from _typedefs cimport crem
from eprop_dist._neurons cimport M_BSS_ADAPT, surrogate_gradient
from eprop_dist._history cimport history_append, prefix_append
from eprop_dist._delivery cimport emit
from eprop_dist._generators cimport rate_value
from eprop_dist._recording cimport (record, has_slots, F_VM, F_SG, F_HD, F_ADAPT, F_VTHA, F_YOUT,
                                    F_YUN, F_TGT, F_ERR)


cdef void step_recurrent_bsshslm(RecurrentNeurons rec, Delivery dl, History hs, Recording rc,
                                 int64_t t, real_t dt, bint reset_on_update) noexcept nogil:
    """Iteration t of eprop_iaf(_adapt)_bsshslm_2020 (SPEC 5.2), interval step istep = (t-2) % T:
    istep 0: prune the history, optionally reset v, r, z, a;  r <- r - 1 if r > 0;
    v <- (P_i_in i_in + P_z_in zin) + P_v_m v - v_th z  (reset one step late), v >= v_min;
    adaptive: a <- P_adapt a + z, A = v_th + beta a;  psi = surrogate_gradient;
    spike iff v >= threshold and r == 0 (counted for the interval's firing rate);
    history entry t: (psi, 0);  istep T-1: F_q = c_reg (n_spikes / T - f_target dt) / T"""
    cdef int64_t j, slot = t % dl.ring_length, T = hs.update_interval, istep = crem(t - 2, T), q
    cdef real_t zin, v, thr, psi
    cdef bint adapt
    for j in range(dl.n_rec):
        adapt = rec.model[j] == M_BSS_ADAPT
        zin = dl.input_ring[j, slot]
        dl.input_ring[j, slot] = 0.0
        if istep == 0:
            hs.prune_bsshslm(j)
            if reset_on_update:
                rec.v_m[j] = 0.0
                rec.refractory_steps[j] = 0
                rec.z[j] = 0
                if adapt:
                    rec.adaptation[j] = 0.0
        if rec.refractory_steps[j] > 0:
            rec.refractory_steps[j] -= 1
        v = (rec.P_i_in[j] * rec.i_in[j] + rec.P_z_in[j] * zin) + rec.P_v_m[j] * rec.v_m[j]
        v = v - rec.v_th[j] * rec.z[j]           # reset one step late (SPEC 5.2 step 4)
        if v < rec.v_min[j]:
            v = rec.v_min[j]
        thr = rec.v_th[j]
        if adapt:
            rec.adaptation[j] = rec.P_adapt[j] * rec.adaptation[j] + rec.z[j]
            rec.v_th_adapt[j] = rec.v_th[j] + rec.adapt_beta[j] * rec.adaptation[j]
            thr = rec.v_th_adapt[j]
        rec.z[j] = 0
        psi = surrogate_gradient(rec.surrogate_gradient_function[j], rec.refractory_steps[j], v, thr,
                                 rec.surrogate_gradient_height[j], rec.surrogate_gradient_width[j])
        if v >= thr and rec.refractory_steps[j] == 0:
            rec.n_spikes_interval[j] += 1
            rec.z[j] = 1
            rec.refractory_steps[j] = rec.refractory_counts[j]
            rec.t_last_emit[j] = t
            emit(dl, t, j, 1)
        rec.v_m[j] = v
        rec.surrogate_gradient[j] = psi
        if hs.has_history[j]:
            history_append(hs, j, t, psi, 0.0)
            if hs.fast_path and hs.fast_class[j] >= 0:
                prefix_append(hs, j, t, False)
        if istep == T - 1:
            # firing-rate regulariser of the interval, key t+1 (SPEC 5.2 step 10)
            if hs.has_history[j]:
                q = (t + 1 - 2) // T
                hs.firing_rate_reg_interval[j, q % hs.n_fr_intervals] = rec.c_reg[j] * (
                    <real_t>rec.n_spikes_interval[j] / <real_t>T - rec.f_target[j] * dt) / <real_t>T
            rec.n_spikes_interval[j] = 0
        rec.i_in[j] = rec.I_e[j]
        if has_slots(rc, j):
            record(rc, t, j, F_VM, v + rec.E_L[j])
            record(rc, t, j, F_SG, psi)
            record(rc, t, j, F_HD, hs.n_entries[j] * dt)
            record(rc, t, j, F_ADAPT, rec.adaptation[j])
            record(rc, t, j, F_VTHA, rec.v_th_adapt[j] + rec.E_L[j])


cdef void step_readouts_bsshslm(Readouts out, Delivery dl, History hs, Recording rc, Generators gn,
                                int64_t t, real_t dt, int64_t D, int64_t learning_window,
                                bint reset_on_update) noexcept nogil:
    """Iteration t of eprop_readout_bsshslm_2020 (SPEC 5.4): MSE, or softmax cross-entropy with
    the normaliser N = sum of the other readouts' u of the previous step (ascending gid).
    v <- (P_i_in i_in + P_z_in zin) + P_v_m v, v >= v_min;  y = u_prev (MSE) or
    u_prev / (N + u_prev) (CE) with u = v + E_L (MSE) or exp(v + E_L) (CE);  err = y - y*;
    outside the learning window y* = y = err = 0."""
    cdef int64_t lid, j, p, slot = t % dl.ring_length, T = hs.update_interval
    cdef int64_t w_idx = t % D
    cdef real_t zin, v, y, u, err, N, ystar
    cdef bint reset = crem(t - 3, T) == 0
    # outside the learning window y* = y = err = 0; C++ remainder, negative (inside) for t < 4
    cdef bint outside = crem(t - 4, T) < T - learning_window
    for lid in range(dl.n_out):
        j = dl.n_rec + lid
        zin = dl.input_ring[j, slot]
        dl.input_ring[j, slot] = 0.0
        if reset:
            hs.prune_bsshslm(j)
            if reset_on_update:
                out.v_m[lid] = 0.0
        if out.target_gen[lid] >= 0:
            out.target_signal[lid] = out.target_weight[lid] * rate_value(gn, out.target_gen[lid], t if out.target_gen_lag[lid] else t + 1)
        v = (out.P_i_in[lid] * out.i_in[lid] + out.P_z_in[lid] * zin) + out.P_v_m[lid] * out.v_m[lid]
        if v < out.v_min[lid]:
            v = out.v_min[lid]
        out.v_m[lid] = v
        ystar = out.target_signal[lid]
        # quirk: the readout signal lags the voltage by one step (y uses u of the previous
        # iteration, SPEC 5.4); with cross-entropy it is the softmax of the previous voltages
        if out.loss[lid]:
            N = 0.0
            for p in range(out.normalizer_indptr[lid], out.normalizer_indptr[lid + 1]):
                N += out.normalizer_weight[p] * dl.readout_u_all[out.normalizer_src_readout[p]]
            y = out.readout_signal_unnorm[lid] / (N + out.readout_signal_unnorm[lid])
            u = exp(v + out.E_L[lid])
        else:
            y = out.readout_signal_unnorm[lid]
            u = v + out.E_L[lid]
        err = y - ystar
        if outside:
            ystar = 0.0
            y = 0.0
            err = 0.0
            out.target_signal[lid] = 0.0
        out.readout_signal_unnorm[lid] = u
        out.readout_signal[lid] = y
        out.error_signal[lid] = err
        if hs.has_history[j]:
            history_append(hs, j, t, 0.0, 0.0)          # ring key t = logical key t-1
            hs.learning_signal[j, t & hs.cmask] = err
            if hs.fast_path and hs.fast_class[j] >= 0:
                prefix_append(hs, j, t, True)
        dl.error_local[w_idx, lid] = err
        dl.readout_u_local[w_idx, lid] = u
        out.i_in[lid] = out.I_e[lid]
        if has_slots(rc, j):
            record(rc, t, j, F_VM, v + out.E_L[lid])
            record(rc, t, j, F_YOUT, y)
            record(rc, t, j, F_YUN, u)
            record(rc, t, j, F_TGT, ystar)
            record(rc, t, j, F_ERR, err)
            record(rc, t, j, F_HD, hs.n_entries[j] * dt)
