# Delivery at a window start W (SPEC 10.2 steps 1-2): device events, learning signals, then the
# spikes of the last window in canonical (stamp, gid) order through static, e-prop and bsshslm
# synapses into the input rings.  Declarations and the spike key format: _delivery.pxd.
from libc.stdlib cimport qsort
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from rng cimport u01, poisson_count
from eprop_dist._recording cimport record


cdef inline double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


def spike_key(stamp, gid, device=False):
    """Encode a spike (NumPy arrays or scalars) as the core's sort key."""
    return ((2 * stamp - (1 if device else 0)) << 31) | gid


def key_to_stamp_gid(key):
    """Decode core spike keys (NumPy int64 arrays) into (stamp, gid)."""
    return ((key >> 31) + 1) >> 1, key & 0x7FFFFFFF


cdef int _cmp_spike(const void* a, const void* b) noexcept nogil:
    """Order spikes (key, mult) by key, i.e. by (delivery time, gid)."""
    cdef int64_t x = (<const int64_t*>a)[0]
    cdef int64_t y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef inline int _deliver_spikes(Delivery dl, EpropSynapses syn, BsshslmSynapses bsyn, Generators gn,
                                Recording rc, Optimizer opt, int64_t W) noexcept nogil:
    """The spikes of the last window in canonical (stamp, gid) order; each e-prop synapse runs
    its send() (gradient window, optimizer) before it transmits the updated weight.  Returns 0,
    or -1 when a synapse found a history entry missing (History.missing_t)."""
    cdef int64_t i, p, q, s, gid, row, mult, m, RL = dl.ring_length, base, slot
    cdef int st
    cdef real_t lam
    cdef long cnt
    cdef double t0
    qsort(&dl.spikes_in[0], dl.n_incoming, 2 * sizeof(int64_t), _cmp_spike)
    for i in range(dl.n_incoming):
        s = key_stamp(dl.spikes_in[2 * i])
        gid = dl.spikes_in[2 * i] & GID_MASK
        mult = dl.spikes_in[2 * i + 1]
        if gid >= dl.src_row_of_gid.shape[0] or dl.src_row_of_gid[gid] < 0:
            continue
        row = dl.src_row_of_gid[gid]
        if mult < 0:
            # poisson generator: an independent count per connection, keyed (seed, gid, conn, stamp)
            lam = gn.poisson_lambda[-1 - mult]
            for p in range(dl.static_indptr[row], dl.static_indptr[row + 1]):
                cnt = poisson_count(lam, u01(gn.seed, <uint64_t>gid, dl.static_poisson_key[p], <uint64_t>s))
                if cnt > 0:
                    q = dl.static_tgt_lid[p]
                    if q >= dl.n_rec + dl.n_out:
                        dl.input_ring[q, (s + dl.static_delay[p] - 1) % RL] += cnt
                    else:
                        dl.input_ring[q, (s + dl.static_delay[p] - 1) % RL] += cnt * dl.static_weight[p]
                    dl.n_syn_events += cnt
            continue
        if mult == 0:
            if dl.bsshslm:      # bsshslm neurons send no flush events (SPEC 5: memory only)
                continue
            if syn.send_row(syn.indptr[row], syn.indptr[row + 1], s, True, W) != 0:
                return -1
            continue
        for m in range(mult):
            for p in range(dl.static_indptr[row], dl.static_indptr[row + 1]):
                q = dl.static_tgt_lid[p]
                if q >= dl.n_rec + dl.n_out:
                    dl.input_ring[q, (s + dl.static_delay[p] - 1) % RL] += 1.0
                else:
                    dl.input_ring[q, (s + dl.static_delay[p] - 1) % RL] += dl.static_weight[p]
            dl.n_syn_events += dl.static_indptr[row + 1] - dl.static_indptr[row]
            t0 = now()
            base = (s - 1) % RL
            # e-prop+: the whole row's gradient windows first (prefetching), then its transmissions
            if not dl.bsshslm and syn.send_row(syn.indptr[row], syn.indptr[row + 1], s, False, W) != 0:
                return -1
            if dl.bsshslm and bsyn.prepare_row(syn.indptr[row], syn.indptr[row + 1], s) != 0:
                return -1
            for p in range(syn.indptr[row], syn.indptr[row + 1]):
                if dl.bsshslm:
                    st = bsyn.send(p, s)
                    if st < 0:
                        return -1
                    if st == 0:
                        continue
                q = syn.tgt_lid[p]
                slot = base + syn.delay[p]             # (s - 1 + delay) % RL without a division
                while slot >= RL:
                    slot -= RL
                dl.input_ring[q, slot] += syn.weight[p]
                if opt.weight_recorder[syn.syn_model[p]] >= 0 and \
                        (rc.weight_recorded.shape[0] == 0 or rc.weight_recorded[p]):
                    rc.weight_stamp[rc.n_weights] = s
                    rc.weight_src_gid[rc.n_weights] = gid
                    rc.weight_tgt_gid[rc.n_weights] = dl.tgt_gid[q]
                    rc.weight_value[rc.n_weights] = syn.weight[p]
                    rc.weight_recorder_id[rc.n_weights] = opt.weight_recorder[syn.syn_model[p]]
                    rc.n_weights += 1
            dl.n_ep_events += syn.indptr[row + 1] - syn.indptr[row]
            dl.t_eprop += now() - t0
    dl.n_incoming = 0
    return 0


cdef class Delivery:

    cdef int64_t weight_records_needed(self) noexcept nogil:
        """Weight records the incoming spikes will append (devices never have e-prop synapses, so
        the neuron spikes already in spikes_in decide); checked before anything is appended."""
        cdef int64_t need = 0, i, p, gid, mult, row
        for i in range(self.n_incoming if self.recording.any_weight_recorder else 0):
            gid = self.spikes_in[2 * i] & GID_MASK
            mult = self.spikes_in[2 * i + 1]
            if gid < self.src_row_of_gid.shape[0] and self.src_row_of_gid[gid] >= 0 and mult > 0:
                row = self.src_row_of_gid[gid]
                for p in range(self.syn.indptr[row], self.syn.indptr[row + 1]):
                    if self.optimizer.weight_recorder[self.syn.syn_model[p]] >= 0 and \
                            (self.recording.weight_recorded.shape[0] == 0 or self.recording.weight_recorded[p]):
                        need += mult
        return need

    cdef bint add_device_events(self, int64_t W, int64_t D) noexcept nogil:
        """Spike-generator spikes with stamps in (W-D, W] join the incoming list, and one
        pseudo-event (mult -1 - i) per poisson generator i and active stamp.  False (nothing
        added): spikes_in has no room."""
        cdef int64_t n_gen = 0, gp, i, s
        gp = self.generators.spike_gen_next
        while gp < self.generators.spike_gen_keys.shape[0] and key_stamp(self.generators.spike_gen_keys[gp]) <= W:
            gp += 1
            n_gen += 1
        if 2 * (self.n_incoming + n_gen + D * self.generators.poisson_src_row.shape[0]) > self.spikes_in.shape[0]:
            return False
        for i in range(n_gen):
            self.spikes_in[2 * (self.n_incoming + i)] = self.generators.spike_gen_keys[self.generators.spike_gen_next + i]
            self.spikes_in[2 * (self.n_incoming + i) + 1] = 1
        self.n_incoming += n_gen
        self.generators.spike_gen_next = gp
        for i in range(self.generators.poisson_src_row.shape[0]):
            for s in range(W - D + 1, W + 1):
                if self.generators.poisson_start[i] < s <= self.generators.poisson_stop[i]:
                    self.spikes_in[2 * self.n_incoming] = ((2 * s - 1) << 31) | self.generators.poisson_gid[i]
                    self.spikes_in[2 * self.n_incoming + 1] = -1 - i
                    self.n_incoming += 1
        return True

    cdef void deliver_learning_signals(self, int64_t W, int64_t D) noexcept nogil:
        """Readout errors of iterations u in [W-D, W): entry u - d_ro of each connected target
        += B_jk err_k(u), readouts in ascending gid (their global order)."""
        cdef int64_t i, u, e, kk, p, j, n_out_g = self.error_all.shape[1]
        cdef real_t err, val
        for i in range(D):
            u = W - D + i
            e = u - self.d_ro
            for kk in range(n_out_g):
                err = self.error_all[i, kk]
                for p in range(self.ls_indptr[kk], self.ls_indptr[kk + 1]):
                    j = self.ls_tgt_lid[p]
                    val = self.ls_weight[p] * err
                    if e >= 0 and self.history.has_history[j]:
                        if self.history.front[j] <= e < self.history.end[j] and self.history.valid[j, e & self.history.cmask]:
                            self.history.learning_signal[j, e & self.history.cmask] += val

    cdef int deliver_spikes(self, int64_t W) noexcept nogil:
        """See _deliver_spikes."""
        return _deliver_spikes(self, self.syn, self.bsshslm_syn, self.generators, self.recording,
                               self.optimizer, W)

    cdef void step_parrots(self, Parrots par, int64_t t) noexcept nogil:
        """Iteration t of the parrot neurons: re-emit what arrived, multiplicity = number of
        events; flush events after flush_interval steps without a spike."""
        cdef int64_t j, lid, slot = t % self.ring_length
        cdef real_t zin
        for j in range(self.n_rec + self.n_out, self.n_tgt):
            lid = j - self.n_rec - self.n_out
            zin = self.input_ring[j, slot]
            self.input_ring[j, slot] = 0.0
            if zin > 0.0:
                par.t_last_emit[lid] = t
                emit(self, t, j, <int64_t>(zin + 0.5))
            elif par.t_last_emit[lid] > 0 and t - par.t_last_emit[lid] >= par.flush_interval[lid]:
                par.t_last_emit[lid] = t
                emit(self, t, j, 0)
