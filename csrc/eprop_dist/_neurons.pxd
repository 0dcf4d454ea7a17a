# State of the local neurons of both model families, one array per variable (struct of arrays).
# The per-step updates live in _neurons_eprop.pyx (e-prop+ models, SPEC 1.2/2.2) and
# _neurons_bsshslm.pyx (original family, SPEC 5.2/5.4); parrots are updated in _delivery.pyx.
#
# Index spaces: `tgt_lid` (local target index): recurrent [0, n_rec), readouts [n_rec, n_rec+n_out),
# parrots [n_rec+n_out, n_tgt).  RecurrentNeurons arrays are indexed by tgt_lid (= recurrent lid),
# Readouts arrays by the readout lid `out_lid` = tgt_lid - n_rec, Parrots by tgt_lid - n_rec - n_out.
# Voltages and thresholds are stored relative to E_L (NEST: V_m - E_L).
from libc.math cimport exp, fabs, pow
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t

# recurrent model codes (eprop_dist/models: REC_MODELS order)
cdef enum:
    M_IAF = 0           # eprop_iaf
    M_IAF_ADAPT = 1     # eprop_iaf_adapt
    M_DELTA = 2         # eprop_iaf_psc_delta
    M_DELTA_ADAPT = 3   # eprop_iaf_psc_delta_adapt
    M_BSS = 4           # eprop_iaf_bsshslm_2020
    M_BSS_ADAPT = 5     # eprop_iaf_adapt_bsshslm_2020

# surrogate gradient function codes
cdef enum:
    SG_PWL = 0          # piecewise_linear
    SG_EXP = 1          # exponential
    SG_FSIG = 2         # fast_sigmoid_derivative
    SG_ATAN = 3         # arctan


cdef inline real_t surrogate_gradient(int kind, int64_t refractory_steps, real_t v_m, real_t v_th,
                                      real_t height, real_t width) noexcept nogil:
    """SPEC 1.3, x = v_m - v_th; all four are 0 while refractory (refractory_steps > 0)."""
    cdef real_t x
    if refractory_steps > 0:
        return 0.0
    x = v_m - v_th
    if kind == SG_PWL:
        x = 1.0 - fabs(x) / width
        return height * x if x > 0.0 else 0.0
    elif kind == SG_EXP:
        return height * exp(-fabs(x) / width)
    elif kind == SG_FSIG:
        return height * pow(1.0 + fabs(x) / width, -2.0)
    else:
        return height / (1.0 + (x / width) * (x / width))


cdef class RecurrentNeurons:
    """Recurrent neurons of either family, indexed by tgt_lid in [0, n_rec)."""
    # ---- parameters (IN; set by eprop_dist/simulation.py push_nodes) ----
    cdef public int32_t[::1] model                        # M_* code
    cdef public int32_t[::1] surrogate_gradient_function  # SG_* code
    cdef public int32_t[::1] refractory_counts            # t_ref in steps
    cdef public int32_t[::1] ignore_and_spike             # 1: spike on a fixed grid (psc_delta)
    cdef public int32_t[::1] refractory_input             # 1: input during refractoriness is kept
    cdef public int64_t[::1] flush_interval               # flush_event_send_interval in steps
    cdef public int64_t[::1] ignore_and_spike_offset, ignore_and_spike_interval   # steps
    cdef public real_t[::1] P_v_m                         # exp(-dt/tau_m)
    cdef public real_t[::1] P_i_in                        # tau_m/C_m (1 - P_v_m)
    cdef public real_t[::1] P_z_in                        # bsshslm: 1 or 1 - P_v_m
    cdef public real_t[::1] v_th, v_min, v_reset          # relative to E_L
    cdef public real_t[::1] I_e, E_L, tau_m
    cdef public real_t[::1] adapt_beta                    # threshold adaptation strength beta
    cdef public real_t[::1] P_adapt                       # exp(-dt/adapt_tau)
    cdef public real_t[::1] c_reg                         # firing-rate regularisation strength
    cdef public real_t[::1] f_target                      # target rate in spikes/ms (f_target/1000)
    cdef public real_t[::1] kappa, kappa_reg              # eligibility / regulariser filter decays
    cdef public real_t[::1] surrogate_gradient_height, surrogate_gradient_width
    # ---- state (INOUT) ----
    cdef public real_t[::1] v_m, i_in                     # v_m relative to E_L
    cdef public real_t[::1] adaptation                    # a
    cdef public real_t[::1] v_th_adapt                    # A = v_th + adapt_beta * a (rel. to E_L)
    cdef public real_t[::1] f_av                          # running firing rate (spikes/ms)
    cdef public real_t[::1] surrogate_gradient            # psi of the last step
    cdef public real_t[::1] refractory_input_sum          # psc_delta input buffered while refractory
    cdef public int64_t[::1] refractory_steps             # steps left in refractoriness
    cdef public int64_t[::1] t_last_emit                  # step of the last spike or flush event
    cdef public int64_t[::1] ignore_and_spike_countdown   # steps to the next forced spike
    cdef public int64_t[::1] n_spikes_interval            # bsshslm: spikes in this update interval
    cdef public uint8_t[::1] z                            # spike of the last step


cdef class Readouts:
    """eprop_readout and eprop_readout_bsshslm_2020, indexed by out_lid in [0, n_out)."""
    # ---- parameters (IN) ----
    cdef public real_t[::1] P_v_m, P_i_in, v_min, I_e, E_L
    cdef public real_t[::1] P_z_in                        # bsshslm: 1 or 1 - P_v_m
    cdef public int32_t[::1] loss                         # bsshslm: 0 mean_squared_error, 1 cross_entropy
    # rate inputs from step_rate_generators (index into Generators' rate arrays, or -1)
    cdef public int32_t[::1] target_gen, learning_window_gen
    cdef public uint8_t[::1] target_gen_lag, learning_window_gen_lag   # 1: generator updates after
    cdef public real_t[::1] target_weight, learning_window_weight      #   the readout; conn. weights
    # readout -> readout rate connections (CSR by out_lid; source = global readout index): the
    # cross-entropy normaliser inputs of the bsshslm readout
    cdef public int64_t[::1] normalizer_indptr
    cdef public int32_t[::1] normalizer_src_readout
    cdef public real_t[::1] normalizer_weight
    # ---- state (INOUT) ----
    cdef public real_t[::1] v_m, i_in
    cdef public real_t[::1] readout_signal, target_signal, error_signal
    cdef public real_t[::1] learning_window_signal
    cdef public real_t[::1] readout_signal_unnorm         # bsshslm: u (exp(V_m) with cross-entropy)


cdef class Parrots:
    """parrot_neurons, indexed by tgt_lid - n_rec - n_out."""
    cdef public int64_t[::1] flush_interval               # steps (INF_STEPS: never)
    cdef public int64_t[::1] t_last_emit
