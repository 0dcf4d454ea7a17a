# Iteration t of the e-prop+ neurons (SPEC 1.2) and readouts (SPEC 2.2).  State: _neurons.pxd.
# Input zin = summed weighted spikes arriving in iteration t (Delivery.input_ring).
from libc.math cimport exp
from eprop_dist._neurons cimport (M_IAF, M_IAF_ADAPT, M_DELTA_ADAPT, surrogate_gradient)
from eprop_dist._history cimport history_append, prefix_append
from eprop_dist._delivery cimport emit
from eprop_dist._generators cimport rate_value
from eprop_dist._recording cimport (record, has_slots, F_VM, F_SG, F_HD, F_ADAPT, F_VTHA, F_YOUT,
                                    F_TGT, F_ERR)


cdef void step_recurrent(RecurrentNeurons rec, Delivery dl, History hs, Recording rc, int64_t t,
                         real_t dt) noexcept nogil:
    """SPEC 1.2, per recurrent neuron j (all voltages relative to E_L):
    eprop_iaf(_adapt):  r <- r - 1 if r > 0;  v <- P_i_in i_in + zin + P_v_m v, v >= v_min;
                        adaptive: a <- P_adapt a + z, A = v_th + beta a (threshold A, else v_th);
                        psi = surrogate_gradient(v, threshold);  spike iff v >= threshold and r == 0
                        (or on the ignore_and_spike grid), then v <- v - v_th, r <- t_ref steps;
                        i_in <- I_e
    eprop_iaf_psc_delta(_adapt): not refractory: v <- (P_i_in (i_in + I_e) + P_v_m v) + zin
                        (+ input buffered while refractory), v >= v_min, adaptation as above;
                        refractory: buffer zin exp(-r dt / tau_m) if refractory_input, r <- r - 1;
                        spike iff v >= threshold, then r <- t_ref steps, v <- v_reset; i_in <- 0
    all:                f_av <- kappa_reg f_av + (1 - kappa_reg) z / dt;
                        F = c_reg (f_av - f_target dt);  history entry t: (psi, F)
    """
    cdef int64_t j, slot = t % dl.ring_length
    cdef int model
    cdef real_t zin, v, psi, F, thr
    cdef bint spike, ias_spike
    for j in range(dl.n_rec):
        model = rec.model[j]
        zin = dl.input_ring[j, slot]
        dl.input_ring[j, slot] = 0.0
        v = rec.v_m[j]
        ias_spike = False
        if rec.ignore_and_spike[j]:
            rec.ignore_and_spike_countdown[j] -= 1
            if rec.ignore_and_spike_countdown[j] <= 0:
                ias_spike = True
                rec.ignore_and_spike_countdown[j] = rec.ignore_and_spike_interval[j]
        if model == M_IAF or model == M_IAF_ADAPT:
            if rec.refractory_steps[j] > 0:
                rec.refractory_steps[j] -= 1
            v = rec.P_i_in[j] * rec.i_in[j] + zin + rec.P_v_m[j] * v
            if v < rec.v_min[j]:
                v = rec.v_min[j]
            thr = rec.v_th[j]
            if model == M_IAF_ADAPT:
                rec.adaptation[j] = rec.P_adapt[j] * rec.adaptation[j] + rec.z[j]
                rec.v_th_adapt[j] = rec.v_th[j] + rec.adapt_beta[j] * rec.adaptation[j]
                thr = rec.v_th_adapt[j]
            rec.z[j] = 0
            psi = surrogate_gradient(rec.surrogate_gradient_function[j], rec.refractory_steps[j], v, thr,
                                     rec.surrogate_gradient_height[j], rec.surrogate_gradient_width[j])
            if rec.ignore_and_spike[j]:
                spike = ias_spike
            else:
                spike = v >= thr and rec.refractory_steps[j] == 0
            if spike:
                rec.z[j] = 1
                v = v - rec.v_th[j]
                rec.refractory_steps[j] = rec.refractory_counts[j]
        else:
            if rec.refractory_steps[j] == 0:
                v = (rec.P_i_in[j] * (rec.i_in[j] + rec.I_e[j]) + rec.P_v_m[j] * v) + zin
                if rec.refractory_input[j] and rec.refractory_input_sum[j] != 0.0:
                    v = v + rec.refractory_input_sum[j]
                    rec.refractory_input_sum[j] = 0.0
                if v < rec.v_min[j]:
                    v = rec.v_min[j]
                if model == M_DELTA_ADAPT:
                    rec.adaptation[j] = rec.P_adapt[j] * rec.adaptation[j] + rec.z[j]
                    rec.v_th_adapt[j] = rec.v_th[j] + rec.adapt_beta[j] * rec.adaptation[j]
            else:
                if rec.refractory_input[j]:
                    rec.refractory_input_sum[j] += zin * exp(-(<real_t>rec.refractory_steps[j]) * dt / rec.tau_m[j])
                rec.refractory_steps[j] -= 1
            thr = rec.v_th_adapt[j] if model == M_DELTA_ADAPT else rec.v_th[j]
            rec.z[j] = 0
            psi = surrogate_gradient(rec.surrogate_gradient_function[j], rec.refractory_steps[j], v, thr,
                                     rec.surrogate_gradient_height[j], rec.surrogate_gradient_width[j])
            if rec.ignore_and_spike[j]:
                spike = ias_spike
            else:
                spike = v >= thr
            if spike:
                rec.refractory_steps[j] = rec.refractory_counts[j]
                v = rec.v_reset[j]
                rec.z[j] = 1
        rec.v_m[j] = v
        rec.surrogate_gradient[j] = psi
        if spike:
            rec.t_last_emit[j] = t
            emit(dl, t, j, 1)
        elif rec.t_last_emit[j] > 0 and t - rec.t_last_emit[j] >= rec.flush_interval[j]:
            rec.t_last_emit[j] = t
            emit(dl, t, j, 0)
        # firing-rate regulariser (SPEC 1.4): f_av in spikes/ms, f_target*dt per step
        rec.f_av[j] = rec.kappa_reg[j] * rec.f_av[j] + (1.0 - rec.kappa_reg[j]) * rec.z[j] / dt
        F = rec.c_reg[j] * (rec.f_av[j] - rec.f_target[j] * dt)
        if hs.has_history[j]:
            history_append(hs, j, t, psi, F)
            if hs.fast_path and hs.fast_class[j] >= 0:
                prefix_append(hs, j, t, False)
        if model == M_IAF or model == M_IAF_ADAPT:
            rec.i_in[j] = rec.I_e[j]
        else:
            rec.i_in[j] = 0.0
        if has_slots(rc, j):
            record(rc, t, j, F_VM, v + rec.E_L[j])
            record(rc, t, j, F_SG, psi)
            record(rc, t, j, F_HD, hs.n_entries[j] * dt)
            record(rc, t, j, F_ADAPT, rec.adaptation[j])
            record(rc, t, j, F_VTHA, rec.v_th_adapt[j] + rec.E_L[j])


cdef void step_readouts(Readouts out, Delivery dl, History hs, Recording rc, Generators gn,
                        int64_t t, real_t dt, int64_t w_start) noexcept nogil:
    """SPEC 2.2, per readout (out_lid) with target y* and learning window lw from rate generators
    (w_start: first iteration of the window; the error goes to row t - w_start of error_local):
    v <- P_i_in i_in + zin + P_v_m v, v >= v_min;  y = v + E_L;  err = y - y*;
    y*, y, err scaled by lw;  history entry t of the readout holds err as its learning signal;
    i_in <- I_e"""
    cdef int64_t lid, j, slot = t % dl.ring_length, n_rec = dl.n_rec
    cdef int64_t w_idx = t - w_start
    cdef real_t zin, v, y, err, lw
    for lid in range(dl.n_out):
        j = n_rec + lid
        zin = dl.input_ring[j, slot]
        dl.input_ring[j, slot] = 0.0
        if out.target_gen[lid] >= 0:
            out.target_signal[lid] = out.target_weight[lid] * rate_value(gn, out.target_gen[lid], t if out.target_gen_lag[lid] else t + 1)
        if out.learning_window_gen[lid] >= 0:
            out.learning_window_signal[lid] = out.learning_window_weight[lid] * rate_value(gn, out.learning_window_gen[lid], t if out.learning_window_gen_lag[lid] else t + 1)
        v = out.P_i_in[lid] * out.i_in[lid] + zin + out.P_v_m[lid] * out.v_m[lid]
        if v < out.v_min[lid]:
            v = out.v_min[lid]
        out.v_m[lid] = v
        lw = out.learning_window_signal[lid]
        y = v + out.E_L[lid]
        err = y - out.target_signal[lid]
        out.target_signal[lid] = out.target_signal[lid] * lw
        y = y * lw
        err = err * lw
        out.readout_signal[lid] = y
        out.error_signal[lid] = err
        if hs.has_history[j]:
            history_append(hs, j, t, 0.0, 0.0)
            hs.learning_signal[j, t & hs.cmask] = err
            if hs.fast_path and hs.fast_class[j] >= 0:
                prefix_append(hs, j, t, True)
        dl.error_local[w_idx, lid] = err
        out.i_in[lid] = out.I_e[lid]
        if has_slots(rc, j):
            record(rc, t, j, F_VM, v + out.E_L[lid])
            record(rc, t, j, F_YOUT, y)
            record(rc, t, j, F_TGT, out.target_signal[lid])
            record(rc, t, j, F_ERR, err)
            record(rc, t, j, F_HD, hs.n_entries[j] * dt)
