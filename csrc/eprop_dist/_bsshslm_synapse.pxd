# eprop_synapse_bsshslm_2020 (SPEC 5.3): the e-prop synapse of the original family, CSR and shared
# state in EpropSynapses (same `syn` index); the arrays here are empty for e-prop+ networks.
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport RecurrentNeurons, Readouts
from eprop_dist._history cimport History
from eprop_dist._optimizer cimport Optimizer
from eprop_dist._eprop_synapse cimport EpropSynapses


cdef class BsshslmSynapses:
    cdef public int32_t[::1] t_previous_update    # start of the current update interval (steps)
    cdef public int32_t[::1] t_next_update        # start of the next update interval
    cdef public int32_t[::1] t_first_spike        # first event of the open window (0: none)
    cdef public int32_t[::1] next_entry           # first logical history entry not yet processed
    cdef public uint8_t[::1] window_open          # 1: an inter-spike interval lies in the interval
    cdef public real_t[::1] sum_e                 # sum of e over the window (regulariser term)
    cdef public real_t[::1] gradient_window       # sum of L e_bar (readouts: L z_bar) so far
    cdef public real_t[::1] kappa                 # e_bar filter of this synapse (exp(-dt/tau_m_readout))
    cdef public int32_t[::1] held_key             # the update-history key this synapse holds
    cdef public int64_t settled_through           # settle(): intervals with start <= this are done
    cdef public int64_t n_fast_windows            # process_entries_fast calls (SPEC 10.4)
    # ---- links and sizes, set by the driver ----
    cdef public EpropSynapses syn
    cdef public RecurrentNeurons rec
    cdef public Readouts out
    cdef public History history
    cdef public Optimizer optimizer
    cdef public int64_t n_rec
    cdef public int64_t update_interval           # T in steps
    cdef public int64_t learning_window           # in steps

    # k IN (syn), s IN (stamp); INOUT: synapse, optimizer and target-history state
    cdef int send(self, int64_t k, int64_t s) noexcept nogil
    # k0..k1-1 IN (one source row's synapses), s IN; INOUT: their window state (see send)
    cdef int prepare_row(self, int64_t k0, int64_t k1, int64_t s) noexcept nogil
    # t_now IN (window start, after its spikes); INOUT: synapse state, target update histories
    cdef int settle(self, int64_t t_now) noexcept nogil
