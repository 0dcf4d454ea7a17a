# e-prop+ synapses (eprop_synapse, SPEC 3.2) of the local targets, CSR by source row: the synapses
# of source row r are [indptr[r], indptr[r+1]) (row of a source gid: Delivery.src_row_of_gid).
# Index `syn` = position in these arrays.  The bsshslm synapse (SPEC 5.3, _bsshslm_synapse.pyx)
# shares the CSR, weight, trace and optimizer arrays and adds its own.
# Per-synapse state is kept narrow (bytes per synapse matter at 1e8 synapses): stamps and step
# counts in int32 (runs < 2^31 steps), delay int16, model uint8; `epsilon` is empty when no target
# is adaptive.
from libc.stdint cimport int64_t, int32_t, int16_t, uint64_t, uint8_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport RecurrentNeurons, Readouts
from eprop_dist._history cimport History
from eprop_dist._optimizer cimport Optimizer


cdef class EpropSynapses:
    cdef public int64_t[::1] indptr               # (n_src_rows + 1,) by src_row
    cdef public int32_t[::1] tgt_lid              # target (recurrent neuron or readout)
    cdef public int16_t[::1] delay                # steps
    cdef public uint8_t[::1] syn_model            # index of the e-prop synapse model (Optimizer)
    cdef public real_t[::1] weight
    cdef public real_t[::1] z_bar                 # low-pass filtered presynaptic spikes
    cdef public real_t[::1] e_bar                 # filtered eligibility trace
    cdef public real_t[::1] e_bar_reg             # eligibility trace filtered for the regulariser
    cdef public real_t[::1] epsilon               # adaptation eligibility vector (adaptive targets)
    cdef public real_t[::1] gradient              # gradient of the current window, summed
    cdef public int32_t[::1] t_spike_previous     # stamp of the last event (0: none yet)
    cdef public int32_t[::1] remaining_steps_until_cutoff
    cdef public int32_t[::1] decay_steps          # trace decay steps owed from skipped entries
    cdef public uint8_t[::1] previous_was_flush   # 1: the last event was a flush event
    # pending presynaptic arrivals: bit i = z of history entry t_spike_previous - shift + 1 + i
    # (bsshslm: of entry next_entry + i)
    cdef public uint64_t[::1] z_pending
    # ---- links and sizes, set by the driver (_driver.pyx) ----
    cdef public RecurrentNeurons rec
    cdef public Readouts out
    cdef public History history
    cdef public Optimizer optimizer
    cdef public int64_t n_rec, shift
    cdef public int64_t n_fast_events             # events whose window took the fast path (SPEC 10.4)
    cdef public int64_t n_fast_adaptive           # of those, onto adaptive targets (window_adapt)
    cdef public int64_t n_settled                 # internal flushes (settle)
    cdef public bint settle_windows               # kernel setting: settle finished cutoff windows
    cdef public int64_t settle_next               # next window start at which settle scans the rows

    # k IN (syn), s IN (stamp of the event), is_flush IN, t_now IN (first iteration of the window
    # being delivered); INOUT: this synapse's state, its optimizer state, history of its target
    cdef int send(self, int64_t k, int64_t s, bint is_flush, int64_t t_now) noexcept nogil
    # the same for every synapse of [k0, k1) (one source row) in order, with the targets' history
    # rows prefetched a few synapses ahead (same operations, same results as send per synapse)
    # W IN (window start, after its deliveries): settle the synapses whose cutoff window ended
    cdef int settle(self, int64_t W) noexcept nogil
    cdef int send_row(self, int64_t k0, int64_t k1, int64_t s, bint is_flush, int64_t t_now) noexcept nogil
