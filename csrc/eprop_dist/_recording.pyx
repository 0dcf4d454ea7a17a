# Recording buffers; the per-step helpers are inline in _recording.pxd.


cdef class Recording:

    cdef void record_learning_signals(self, History hs, int64_t W, int64_t D) noexcept nogil:
        """Deferred learning_signal samples of the last window [W-D, W), NEST's recordable (SPEC 1.2
        step 8): L of the first existing entry with key >= u - shift; an entry newer than
        u - shift had not received its signal in iteration u, and pruning happens only after this
        point (called after the learning signals of the window were added, before the spikes)."""
        cdef int64_t i, u, p, j, e
        cdef real_t val
        for i in range(D):
            u = W - D + i
            for p in range(self.slot_multimeter.shape[0]):
                if self.slot_field[p] == F_LS and samples_at(self, self.slot_multimeter[p], u):
                    j = self.slot_tgt_lid[p]
                    e = u - self.learning_signal_shift
                    val = 0.0
                    if hs.has_history[j] and hs.n_entries[j] > 0:
                        if e < hs.front[j]:
                            e = hs.front[j]
                        while e < hs.end[j] and not hs.valid[j, e & hs.cmask]:
                            e += 1
                        if e == u - self.learning_signal_shift and e < hs.end[j]:
                            val = hs.learning_signal[j, e & hs.cmask]
                    self.sample_t[self.n_samples] = u
                    self.sample_slot[self.n_samples] = <int32_t>p
                    self.sample_value[self.n_samples] = val
                    self.n_samples += 1
