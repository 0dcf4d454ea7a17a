# e-prop histories of the local recurrent neurons and readouts (SPEC 1.5, 5.5, 10.3): one ring of
# `capacity` entries per target, indexed by (ring key % capacity).  A ring key is a step: entry t
# holds the values of iteration t (bsshslm readouts: logical key t-1 is stored at ring key t).
# Rows are indexed by tgt_lid in [0, n_rec + n_out) (recurrent neurons, then readouts).
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t


cdef class History:
    cdef public int64_t capacity                  # ring length C (grown by eprop_dist/state.py)
    cdef public int64_t shift                     # learning-signal shift d_ro + d_or (NEST: 2)
    cdef public uint8_t[::1] has_history          # 1: the target has incoming e-prop synapses
    cdef public int64_t[::1] isi_trace_cutoff     # eprop_isi_trace_cutoff in steps (or INF_STEPS)
    # ---- entries, (n_h, capacity) by ring key % capacity ----
    cdef public real_t[:, ::1] surrogate_gradient # psi
    cdef public real_t[:, ::1] learning_signal    # L (readouts: their error signal)
    cdef public real_t[:, ::1] firing_rate_reg    # F = c_reg (f_av - f_target)
    cdef public uint8_t[:, ::1] valid             # 1: entry present
    # ---- extent, (n_h,) ----
    cdef public int64_t[::1] front, end           # live entries are in [front, end)
    cdef public int64_t[::1] n_entries            # number of valid entries
    # ---- update history (NEST's update_history: t_spike of each synapse's last event) ----
    cdef public int32_t[:, ::1] update_count      # synapses whose last event has this key
    cdef public int64_t[::1] first_update_key     # smallest key with update_count > 0 (else end)
    cdef public int64_t[::1] n_update_keys        # keys with update_count > 0
    # ---- bsshslm: firing-rate regulariser per update interval q, ring of n_fr_intervals ----
    cdef public real_t[:, ::1] firing_rate_reg_interval
    cdef public int64_t n_fr_intervals
    cdef public int64_t update_interval           # bsshslm update interval T in steps
    # ---- a missing entry found by a synapse kernel (status ERR_HISTORY) ----
    cdef public int64_t missing_t, missing_tgt_lid

    # h IN: row (tgt_lid); t_spike, t_previous IN: stamps of the synapse's event and its previous one;
    # t_now IN: first iteration of the window being delivered.  INOUT: the row's entries and counts.
    cdef void erase_used_history(self, int64_t h, int64_t t_spike, int64_t t_previous,
                                 int64_t t_now) noexcept nogil
    cdef void prune_bsshslm(self, int64_t h) noexcept nogil
    cdef bint needs_growth(self, int64_t n_h, int64_t n_rec, int64_t D, int64_t t_now,
                           bint bsshslm) noexcept nogil


# Per-step / per-event helpers, inline so that the neuron and synapse kernels that call them
# compile them in (no call through the class's method table).

cdef inline void history_append(History hs, int64_t h, int64_t t, real_t psi, real_t F) noexcept nogil:
    """Entry t of target h: psi, F, learning signal 0 (delivery adds it later)."""
    cdef int64_t sl = t % hs.capacity
    hs.surrogate_gradient[h, sl] = psi
    hs.learning_signal[h, sl] = 0.0
    hs.firing_rate_reg[h, sl] = F
    hs.valid[h, sl] = 1
    if hs.n_entries[h] == 0:
        hs.front[h] = t
    hs.n_entries[h] += 1
    hs.end[h] = t + 1
    if hs.n_update_keys[h] == 0:
        hs.first_update_key[h] = t + 1


cdef inline void fix_first_update_key(History hs, int64_t h) noexcept nogil:
    if hs.n_update_keys[h] == 0:
        hs.first_update_key[h] = hs.end[h]
        return
    while hs.update_count[h, hs.first_update_key[h] % hs.capacity] == 0:
        hs.first_update_key[h] += 1


cdef inline void update_inc(History hs, int64_t h, int64_t key) noexcept nogil:
    """Update history of target h: one more synapse whose last event has ring key `key`."""
    cdef int64_t sl = key % hs.capacity
    if hs.update_count[h, sl] == 0:
        hs.n_update_keys[h] += 1
        if hs.n_update_keys[h] == 1 or key < hs.first_update_key[h]:
            hs.first_update_key[h] = key
    hs.update_count[h, sl] += 1


cdef inline void update_dec(History hs, int64_t h, int64_t key) noexcept nogil:
    """One synapse fewer at `key` (not below 0); a key whose count reaches 0 is removed."""
    cdef int64_t sl = key % hs.capacity
    if hs.update_count[h, sl] > 0:
        hs.update_count[h, sl] -= 1
        if hs.update_count[h, sl] == 0:
            hs.n_update_keys[h] -= 1
            fix_first_update_key(hs, h)
