# The window driver: one rank's kernels, run window by window in SPEC 10.2 order (_driver.pyx).
from libc.stdint cimport int64_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport RecurrentNeurons, Readouts, Parrots
from eprop_dist._history cimport History
from eprop_dist._optimizer cimport Optimizer
from eprop_dist._eprop_synapse cimport EpropSynapses
from eprop_dist._bsshslm_synapse cimport BsshslmSynapses
from eprop_dist._delivery cimport Delivery
from eprop_dist._generators cimport Generators
from eprop_dist._recording cimport Recording

# status codes returned by Core.run, grow reasons (bit mask in Core.grow_what)
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


cdef class Core:
    # ---- sizes and time (set by eprop_dist/state.py; copied into the kernels by run) ----
    cdef public int64_t t                 # next iteration to compute
    cdef public int64_t D                 # communication window in steps (= min delay)
    cdef public int64_t last_len          # steps of the last window run (<= D; shorter at the end of a
                                          # Simulate that D does not divide); its output is delivered at t
    cdef public int64_t shift             # learning-signal shift d_ro + d_or (NEST: 2)
    cdef public int64_t d_ro              # delay recurrent -> readout (entry = readout iteration - d_ro)
    cdef public int n_rec, n_out, n_par, n_tgt   # local recurrent neurons, readouts, parrots; n_tgt all
    cdef public real_t dt                 # ms per step
    cdef public bint bsshslm              # the network uses the original (bsshslm_2020) family
    cdef public int64_t update_interval   # bsshslm: update interval T in steps
    cdef public int64_t learning_window   # bsshslm: learning window in steps
    cdef public bint reset_on_update      # bsshslm: eprop_reset_neurons_on_update
    cdef public bint delivered            # deliveries of the window starting at t are done
    cdef public int grow_what             # GROW_* bits of the last GROW
    # ---- the kernels' state ----
    cdef public RecurrentNeurons rec
    cdef public Readouts out
    cdef public Parrots parrots
    cdef public History history
    cdef public Optimizer optimizer
    cdef public EpropSynapses syn
    cdef public BsshslmSynapses bsshslm_syn
    cdef public Delivery delivery
    cdef public Generators generators
    cdef public Recording recording
    # ---- timers (seconds) ----
    cdef public double t_deliver, t_update

    cdef void share_sizes(self)
    cdef int deliver(self) noexcept nogil
    cdef void step(self, int64_t t, int64_t w_start) noexcept nogil
    cdef int check_capacity(self) noexcept nogil
