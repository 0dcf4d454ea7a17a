# Per-step updates of the e-prop+ models (SPEC 1.2, 2.2): eprop_iaf, eprop_iaf_adapt,
# eprop_iaf_psc_delta, eprop_iaf_psc_delta_adapt and eprop_readout.
from libc.stdint cimport int64_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport RecurrentNeurons, Readouts
from eprop_dist._history cimport History
from eprop_dist._delivery cimport Delivery
from eprop_dist._generators cimport Generators
from eprop_dist._recording cimport Recording

# Arguments: rec/out INOUT (state, by tgt_lid / out_lid); dl INOUT (input_ring slot t is read and
# cleared, spikes_out and error_local are appended/written); hs INOUT (entry t appended); rc INOUT
# (samples, spike records appended); gn IN (rate generators); t IN (iteration); dt IN (ms);
# D IN (window length: error_local row t % D).
cdef void step_recurrent(RecurrentNeurons rec, Delivery dl, History hs, Recording rc, int64_t t,
                         real_t dt) noexcept nogil
cdef void step_readouts(Readouts out, Delivery dl, History hs, Recording rc, Generators gn,
                        int64_t t, real_t dt, int64_t w_start) noexcept nogil
