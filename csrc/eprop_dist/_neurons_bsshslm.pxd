# Per-step updates of the original family (SPEC 5.2, 5.4): eprop_iaf_bsshslm_2020,
# eprop_iaf_adapt_bsshslm_2020 and eprop_readout_bsshslm_2020.
from libc.stdint cimport int64_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport RecurrentNeurons, Readouts
from eprop_dist._history cimport History
from eprop_dist._delivery cimport Delivery
from eprop_dist._generators cimport Generators
from eprop_dist._recording cimport Recording

# Arguments as in _neurons_eprop.pxd, plus: learning_window IN (steps), reset_on_update IN
# (eprop_reset_neurons_on_update); the update interval is hs.update_interval; dl.readout_u_all IN,
# dl.readout_u_local OUT (softmax inputs u).
cdef void step_recurrent_bsshslm(RecurrentNeurons rec, Delivery dl, History hs, Recording rc,
                                 int64_t t, real_t dt, bint reset_on_update) noexcept nogil
cdef void step_readouts_bsshslm(Readouts out, Delivery dl, History hs, Recording rc, Generators gn,
                                int64_t t, real_t dt, int64_t D, int64_t learning_window,
                                bint reset_on_update) noexcept nogil
