# Spike and learning-signal delivery, input rings, exchange buffers (DESIGN 1, SPEC 10.2).
#
# A spike is an int64 key plus a multiplicity (0 = flush event; < 0: poisson pseudo-event -1 - i of
# poisson generator i).  The key orders spikes by delivery time, then gid:
#   key = (2*stamp - dev) << 31 | gid,  dev = 1 for devices (spike generators), which NEST delivers
# during iteration stamp-1, before the neuron spikes of the same stamp (SPEC 0.4).
# Index spaces: tgt_lid (see _neurons.pxd), src_gid (global id of a source), src_row (row of the
# source CSRs, Delivery.src_row_of_gid), out_gid_idx (index into the global readout list,
# eprop_dist/state.py out_gids_global).
from libc.stdint cimport int64_t, int32_t, uint64_t
from _typedefs cimport real_t
from eprop_dist._neurons cimport Parrots
from eprop_dist._history cimport History
from eprop_dist._optimizer cimport Optimizer
from eprop_dist._eprop_synapse cimport EpropSynapses
from eprop_dist._bsshslm_synapse cimport BsshslmSynapses
from eprop_dist._generators cimport Generators
from eprop_dist._recording cimport Recording

cdef enum:
    GID_MASK = 0x7FFFFFFF       # low 31 bits of a spike key: the gid


cdef inline int64_t key_stamp(int64_t key) noexcept nogil:
    return ((key >> 31) + 1) >> 1


cdef class Delivery:
    # ---- input ring: summed input of tgt_lid arriving in iteration t, at slot t % ring_length ----
    cdef public real_t[:, ::1] input_ring         # (n_tgt, ring_length)
    cdef public int64_t ring_length               # >= max delay + D
    cdef public int64_t[::1] tgt_gid              # (n_tgt,) gid of each tgt_lid
    cdef public int32_t[::1] src_row_of_gid       # src_gid -> src_row, -1: no local synapse
    # ---- static synapses (static_synapse, devices' connections), CSR by src_row ----
    cdef public int64_t[::1] static_indptr
    cdef public int32_t[::1] static_tgt_lid, static_delay
    cdef public real_t[::1] static_weight
    cdef public uint64_t[::1] static_poisson_key  # poisson rows: stream key of the connection
    # ---- learning-signal connections, CSR by out_gid_idx ----
    cdef public int64_t[::1] ls_indptr
    cdef public int32_t[::1] ls_tgt_lid
    cdef public real_t[::1] ls_weight
    # ---- readout values exchanged per window ----
    cdef public real_t[:, ::1] error_all          # (D, n_out_global) errors of the last window
    cdef public real_t[:, ::1] error_local        # (D, n_out) errors of this window, by out_lid
    cdef public real_t[::1] readout_u_all         # bsshslm: (n_out_global,) u of the last step
    cdef public real_t[:, ::1] readout_u_local    # bsshslm: (D, n_out) u of this window
    # ---- spikes: (key, multiplicity) pairs; outgoing of this window, incoming for delivery ----
    cdef public int64_t[::1] spikes_out
    cdef public int64_t n_outgoing
    cdef public int64_t[::1] spikes_in
    cdef public int64_t n_incoming
    # ---- counters ----
    cdef public int64_t n_syn_events, n_ep_events # static / e-prop synapse events delivered
    cdef public double t_eprop                    # seconds in e-prop synapse updates
    # ---- links and sizes, set by the driver ----
    cdef public History history
    cdef public EpropSynapses syn
    cdef public BsshslmSynapses bsshslm_syn
    cdef public Optimizer optimizer
    cdef public Generators generators
    cdef public Recording recording
    cdef public int64_t n_rec, n_out, n_tgt, d_ro
    cdef public bint bsshslm

    # W IN: first iteration of the window being delivered; D IN: window length in steps
    cdef int64_t weight_records_needed(self) noexcept nogil          # reads spikes_in
    cdef bint add_device_events(self, int64_t W, int64_t D) noexcept nogil   # INOUT spikes_in
    cdef void deliver_learning_signals(self, int64_t W, int64_t D) noexcept nogil   # INOUT history
    cdef int deliver_spikes(self, int64_t W) noexcept nogil          # INOUT rings, synapses, records
    cdef void step_parrots(self, Parrots par, int64_t t) noexcept nogil   # INOUT par, rings, spikes_out


cdef inline void emit(Delivery dl, int64_t t, int64_t tid, int64_t mult) noexcept nogil:
    """Target tid sends a spike (mult > 0) or flush event (mult 0) in iteration t (stamp t+1)."""
    cdef int64_t key = ((2 * (t + 1)) << 31) | dl.tgt_gid[tid]
    dl.spikes_out[2 * dl.n_outgoing] = key
    dl.spikes_out[2 * dl.n_outgoing + 1] = mult
    dl.n_outgoing += 1
    if mult > 0 and dl.recording.spike_recorded[tid]:
        dl.recording.spike_key[dl.recording.n_spikes] = key
        dl.recording.spike_multiplicity[dl.recording.n_spikes] = <int32_t>mult
        dl.recording.n_spikes += 1
