# e-prop histories of the local recurrent neurons and readouts (SPEC 1.5, 5.5, 10.3): one ring of
# `capacity` entries per target, indexed by (ring key & cmask), capacity a power of two.  A ring key is a step: entry t
# holds the values of iteration t (bsshslm readouts: logical key t-1 is stored at ring key t).
# Rows are indexed by tgt_lid in [0, n_rec + n_out) (recurrent neurons, then readouts).
from libc.stdint cimport int64_t, int32_t, uint8_t
from _typedefs cimport real_t


cdef class History:
    cdef public int64_t capacity                  # ring length C, a power of two (grown by state.py)
    cdef public int64_t cmask                     # capacity - 1: slot of ring key t is t & cmask
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
    # ---- fast path of the e-prop+ gradient window (SPEC 10.4, _eprop_synapse.pyx) ----
    # prefix[key & cmask, h, :] (slot-major: the synapses of one source row read the same slots of
    # many targets, so those rows lie together) for block base b = key - key % B (B = class_block[fast_class[h]],
    # blocks at absolute multiples of B, so the sums do not depend on the window D):
    #   recurrent: 0 A1 = sum_{u=b..t} (alpha/kappa)^(u-b) psi_u       3 A2 (same with kappa_reg)
    #              1 R1 = sum kappa^(u-b) L_u                            4 R2 = sum kappa_reg^(u-b) F_u
    #              2 Q1 = sum kappa^(u-b) L_u A1_u                       5 Q2 = sum kappa_reg^(u-b) F_u A2_u
    #   readout:   0 R  = sum alpha^(u-b) err_u
    #   and copies of the entry itself, 6 psi_t, 7 L_t (once complete), 8 F_t: the fast path's short
    #   pieces read them beside the prefix rows instead of from three other arrays
    # R1/Q1 are written once L_t is complete (Core.deliver: entries < prefix_done), the rest at
    # append.  Targets with the same (alpha, kappa, kappa_reg) share a class: a table of powers.
    cdef public bint fast_path                    # kernel setting eprop_fast_path (and a fast target)
    cdef public real_t[:, :, ::1] prefix          # (capacity, n_h, 9)
    cdef public int32_t[::1] fast_class           # (n_h,) class, -1: the step path only
    cdef public uint8_t[::1] fast_only            # (n_h,) every incoming synapse takes the fast path:
    #   NEST's middle erasure is skipped (memory only; eprop_history_duration then counts from the
    #   first pending window on); 0 where learning_signal / eprop_history_duration is recorded
    cdef public int64_t[::1] class_block          # (n_cls,) block length B (power of two <= 64)
    cdef public real_t[:, :, ::1] class_powers    # (n_cls, 8, 65): powers j = 0..64 of
    #   0 alpha, 1 1/alpha, 2 kappa, 3 1/kappa, 4 kappa_reg, 5 1/kappa_reg, 6 alpha/kappa, 7 alpha/kappa_reg
    cdef public int64_t prefix_done               # R1/Q1 exist for entries < prefix_done
    cdef public uint8_t[::1] bsshslm_settle       # (n_h,) bsshslm: finished intervals are settled by
    #   BsshslmSynapses.settle (memory only; 0 where learning_signal / eprop_history_duration is recorded)
    # ---- a missing entry found by a synapse kernel (status ERR_HISTORY) ----
    cdef public int64_t missing_t, missing_tgt_lid

    # h IN: row (tgt_lid); t_spike, t_previous IN: stamps of the synapse's event and its previous one;
    # t_now IN: first iteration of the window being delivered.  INOUT: the row's entries and counts.
    cdef void erase_used_history(self, int64_t h, int64_t t_spike, int64_t t_previous,
                                 int64_t t_now) noexcept nogil
    cdef void prune_bsshslm(self, int64_t h) noexcept nogil
    cdef void complete_prefixes(self, int64_t n_rec, int64_t e_stop) noexcept nogil
    cdef bint needs_growth(self, int64_t n_h, int64_t n_rec, int64_t D, int64_t t_now,
                           bint bsshslm) noexcept nogil


# Per-step / per-event helpers, inline so that the neuron and synapse kernels that call them
# compile them in (no call through the class's method table).

cdef inline void history_append(History hs, int64_t h, int64_t t, real_t psi, real_t F) noexcept nogil:
    """Entry t of target h: psi, F, learning signal 0 (delivery adds it later)."""
    cdef int64_t sl = t & hs.cmask
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
    while hs.update_count[h, hs.first_update_key[h] & hs.cmask] == 0:
        hs.first_update_key[h] += 1


cdef inline void update_inc(History hs, int64_t h, int64_t key) noexcept nogil:
    """Update history of target h: one more synapse whose last event has ring key `key`."""
    cdef int64_t sl = key & hs.cmask
    if hs.update_count[h, sl] == 0:
        hs.n_update_keys[h] += 1
        if hs.n_update_keys[h] == 1 or key < hs.first_update_key[h]:
            hs.first_update_key[h] = key
    hs.update_count[h, sl] += 1


cdef inline void update_dec(History hs, int64_t h, int64_t key) noexcept nogil:
    """One synapse fewer at `key` (not below 0); a key whose count reaches 0 is removed."""
    cdef int64_t sl = key & hs.cmask
    if hs.update_count[h, sl] > 0:
        hs.update_count[h, sl] -= 1
        if hs.update_count[h, sl] == 0:
            hs.n_update_keys[h] -= 1
            fix_first_update_key(hs, h)


cdef inline void prefix_append(History hs, int64_t h, int64_t t, bint readout) noexcept nogil:
    """Prefix quantities of entry t known when it is appended (A1, A2, R2, Q2; readout: R)."""
    cdef int64_t c = hs.fast_class[h]
    cdef int64_t j = t & (hs.class_block[c] - 1)
    cdef int64_t sl = t & hs.cmask, sp = (t - 1) & hs.cmask
    cdef real_t psi, F, A2
    if readout:
        hs.prefix[sl, h, 0] = (hs.prefix[sp, h, 0] if j > 0 else 0.0) + \
            hs.class_powers[c, 0, j] * hs.learning_signal[h, sl]
        hs.prefix[sl, h, 7] = hs.learning_signal[h, sl]
        return
    psi = hs.surrogate_gradient[h, sl]
    F = hs.firing_rate_reg[h, sl]
    hs.prefix[sl, h, 6] = psi
    hs.prefix[sl, h, 8] = F
    if j > 0:
        hs.prefix[sl, h, 0] = hs.prefix[sp, h, 0] + hs.class_powers[c, 6, j] * psi
        A2 = hs.prefix[sp, h, 3] + hs.class_powers[c, 7, j] * psi
        hs.prefix[sl, h, 4] = hs.prefix[sp, h, 4] + hs.class_powers[c, 4, j] * F
        hs.prefix[sl, h, 5] = hs.prefix[sp, h, 5] + hs.class_powers[c, 4, j] * F * A2
    else:
        hs.prefix[sl, h, 0] = psi
        A2 = psi
        hs.prefix[sl, h, 4] = F
        hs.prefix[sl, h, 5] = F * A2
    hs.prefix[sl, h, 3] = A2


cdef inline void prefix_complete(History hs, int64_t h, int64_t t) noexcept nogil:
    """R1, Q1 of recurrent entry t once its learning signal is complete."""
    cdef int64_t c = hs.fast_class[h]
    cdef int64_t j = t & (hs.class_block[c] - 1)
    cdef int64_t sl = t & hs.cmask, sp = (t - 1) & hs.cmask
    cdef real_t w = hs.class_powers[c, 2, j] * hs.learning_signal[h, sl]
    hs.prefix[sl, h, 7] = hs.learning_signal[h, sl]
    if j > 0:
        hs.prefix[sl, h, 1] = hs.prefix[sp, h, 1] + w
        hs.prefix[sl, h, 2] = hs.prefix[sp, h, 2] + w * hs.prefix[sl, h, 0]
    else:
        hs.prefix[sl, h, 1] = w
        hs.prefix[sl, h, 2] = w * hs.prefix[sl, h, 0]
