# Weight optimizers of the e-prop synapse models (SPEC 3.4): gradient descent and Adam, with NEST's
# learning-rate change after the first update, batching by an integer index, Adam catch-up steps and
# clipping to [Wmin, Wmax].  Common properties are per synapse model (`syn_model`, the index of the
# e-prop synapse model of this network, eprop_dist/state.py ep_models order); optimizer state is per
# e-prop synapse (`syn`, index into EpropSynapses' arrays).
from libc.math cimport sqrt
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t

cdef enum:
    OPT_GD = 0          # gradient_descent
    OPT_ADAM = 1        # adam


cdef class Optimizer:
    # ---- common properties, by syn_model (IN) ----
    cdef public int32_t[::1] optimizer_type       # OPT_* code
    cdef public int32_t[::1] optimize_each_step   # 1: one optimizer call per history entry
    cdef public int32_t[::1] weight_recorder      # index of the weight recorder, -1: none
    cdef public int32_t[::1] average_gradient     # bsshslm: divide by the learning window
    cdef public int64_t[::1] batch_size
    cdef public int64_t[::1] eta_change_count     # != 0: eta_first_change for the first update
    cdef public real_t[::1] eta, eta_first_change, Wmin, Wmax, beta_1, beta_2, epsilon
    # ---- state, by syn (INOUT); m, v and the beta powers are empty when no model uses Adam ----
    cdef public real_t[::1] cumulative_gradient   # gradient summed since the last optimizer step
    cdef public real_t[::1] eta_current           # learning rate of the next step
    cdef public int32_t[::1] optimization_step    # 1 + index of the last batch applied (starts at 1)
    cdef public real_t[::1] m, v                  # Adam moments
    cdef public real_t[::1] beta_1_power, beta_2_power   # beta_1^steps, beta_2^steps


cdef inline real_t optimize(Optimizer o, int64_t k, int mdl, int64_t idx, real_t g,
                            real_t w) noexcept nogil:
    """W <- OPT(idx, g, W) for e-prop synapse k of synapse model mdl (SPEC 3.4): learning-rate
    lag, batching by integer idx (batch = 1 + idx // batch_size), Adam catch-up (gradient in the
    first pass only), clipping."""
    cdef int64_t bs = o.batch_size[mdl]
    cdef int64_t cur, step
    cdef real_t cum, a, b1 = o.beta_1[mdl], b2 = o.beta_2[mdl]
    if o.eta_change_count[mdl] != 0 and o.optimization_step[k] == 1:
        o.eta_current[k] = o.eta_first_change[mdl]
    cum = o.cumulative_gradient[k] + g
    cur = 1 + idx // bs
    if o.optimization_step[k] < cur:
        cum = cum / bs
        if o.optimizer_type[mdl] == OPT_GD:
            w -= o.eta_current[k] * cum
            cum = 0.0
        else:
            for step in range(o.optimization_step[k], cur):
                o.beta_1_power[k] *= b1
                o.beta_2_power[k] *= b2
                a = o.eta_current[k] * sqrt(1.0 - o.beta_2_power[k]) / (1.0 - o.beta_1_power[k])
                o.m[k] = b1 * o.m[k] + (1.0 - b1) * cum
                o.v[k] = b2 * o.v[k] + (1.0 - b2) * cum * cum
                w -= a * o.m[k] / (sqrt(o.v[k]) + o.epsilon[mdl])
                cum = 0.0
        if w < o.Wmin[mdl]:
            w = o.Wmin[mdl]
        if w > o.Wmax[mdl]:
            w = o.Wmax[mdl]
        o.eta_current[k] = o.eta[mdl]
        o.optimization_step[k] = <int32_t>cur
    o.cumulative_gradient[k] = cum
    return w
