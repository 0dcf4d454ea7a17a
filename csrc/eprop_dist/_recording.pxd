# Recording buffers filled by the kernels, read and cleared by eprop_dist/simulation.py: multimeter
# samples, spike records, weight records.  A multimeter `mm` records `slots`; a slot is one
# (multimeter, tgt_lid, field).  Buffers are sized by eprop_dist/state.py; the driver checks room for
# a window before it starts (status GROW), so the kernels never allocate.
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t
from eprop_dist._history cimport History

# recordable field codes (multimeter record_from; eprop_dist/simulation.py FIELD_CODE)
cdef enum:
    F_VM = 0            # V_m
    F_SG = 1            # surrogate_gradient
    F_LS = 2            # learning_signal (deferred by one window, see record_learning_signals)
    F_HD = 3            # eprop_history_duration
    F_ADAPT = 4         # adaptation
    F_VTHA = 5          # V_th_adapt
    F_YOUT = 6          # readout_signal
    F_TGT = 7           # target_signal
    F_ERR = 8           # error_signal
    F_YUN = 9           # readout_signal_unnorm


cdef class Recording:
    # ---- multimeters, by mm (IN), in steps: sample iteration t iff start < t+1 <= stop, (t+1) % interval == 0
    cdef public int32_t[::1] multimeter_start, multimeter_stop, multimeter_interval
    # ---- slots (IN) ----
    cdef public int32_t[::1] slot_multimeter, slot_tgt_lid, slot_field
    cdef public int64_t[::1] slot_indptr          # slots of tgt_lid: slot_order[slot_indptr[j]:slot_indptr[j+1]]
    cdef public int32_t[::1] slot_order           # slot ids grouped by tgt_lid
    cdef public int64_t learning_signal_shift     # learning_signal sample of t is entry t - this
    # ---- samples (OUT) ----
    cdef public int64_t[::1] sample_t
    cdef public int32_t[::1] sample_slot
    cdef public real_t[::1] sample_value
    cdef public int64_t n_samples
    # ---- spike records (OUT): spike keys (see _delivery.pxd) of recorded targets ----
    cdef public uint8_t[::1] spike_recorded       # (n_tgt,) 1: a spike recorder listens
    cdef public int64_t[::1] spike_key
    cdef public int32_t[::1] spike_multiplicity
    cdef public int64_t n_spikes
    # ---- weight records (OUT), one per transmitted e-prop event of a recorded synapse model ----
    cdef public int64_t[::1] weight_stamp, weight_src_gid, weight_tgt_gid
    cdef public int32_t[::1] weight_recorder_id
    cdef public real_t[::1] weight_value
    cdef public int64_t n_weights
    cdef public bint any_weight_recorder
    cdef public uint8_t[::1] weight_recorded      # (n_syn,) 1: record this synapse (its weight
    #   recorder's senders/targets); empty: every synapse of a model with a weight recorder

    cdef void record_learning_signals(self, History hs, int64_t W, int64_t D) noexcept nogil


cdef inline bint samples_at(Recording rc, int64_t mm, int64_t t) noexcept nogil:
    """A multimeter samples iteration t iff start < (t+1) <= stop (steps) on its interval grid."""
    return rc.multimeter_start[mm] < t + 1 <= rc.multimeter_stop[mm] and (t + 1) % rc.multimeter_interval[mm] == 0


cdef inline void record(Recording rc, int64_t t, int64_t tid, int field, real_t val) noexcept nogil:
    """Sample `field` = val of target tid at iteration t into every slot that asks for it."""
    cdef int64_t p, sl
    for p in range(rc.slot_indptr[tid], rc.slot_indptr[tid + 1]):
        sl = rc.slot_order[p]
        if rc.slot_field[sl] == field and samples_at(rc, rc.slot_multimeter[sl], t):
            rc.sample_t[rc.n_samples] = t
            rc.sample_slot[rc.n_samples] = <int32_t>sl
            rc.sample_value[rc.n_samples] = val
            rc.n_samples += 1


cdef inline bint has_slots(Recording rc, int64_t tid) noexcept nogil:
    return rc.slot_indptr[tid + 1] > rc.slot_indptr[tid]
