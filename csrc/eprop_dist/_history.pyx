# History bookkeeping (SPEC 1.5, generalised with shift = d_ro + d_or; bsshslm pruning SPEC 5.5).
# Declarations: _history.pxd.
from _typedefs cimport EPROP_INF_STEPS


cdef inline void erase(History hs, int64_t h, int64_t key) noexcept nogil:
    cdef int64_t sl = key & hs.cmask
    if hs.valid[h, sl]:
        hs.valid[h, sl] = 0
        hs.n_entries[h] -= 1


cdef inline void fix_front(History hs, int64_t h) noexcept nogil:
    while hs.front[h] < hs.end[h] and not hs.valid[h, hs.front[h] & hs.cmask]:
        hs.front[h] += 1


cdef class History:

    cdef void erase_used_history(self, int64_t h, int64_t t_spike, int64_t t_previous,
                                 int64_t t_now) noexcept nogil:
        """NEST's erase_used_eprop_history(t_spike, t_prev) for target history h; t_now is the
        first iteration of the current window (the delivery step)."""
        cdef int64_t s = t_spike, sp = t_previous, C = self.capacity
        cdef int64_t c = self.isi_trace_cutoff[h], cb, ce, eb, ee, u, ulo, uhi, rb, re, keep, key
        # 1. count the new stamp
        update_inc(self, h, s)
        if sp > 0:
            # 2a. release the previous stamp
            update_dec(self, h, sp)
        if sp > 0 and not self.fast_only[h]:
            # 2b. erase the part of the previous window that no other pending window needs
            cb = sp - self.shift + 1
            ce = cb + c if c < EPROP_INF_STEPS else EPROP_INF_STEPS
            eb = cb
            ee = ce
            ulo = cb - c if c < EPROP_INF_STEPS else self.first_update_key[h]
            if ulo < self.first_update_key[h]:
                ulo = self.first_update_key[h]
            # keys whose needed range [u - shift + 1, ...) starts inside [cb, ce]: u <= ce + shift - 2
            # (NEST, shift 2: u <= ce)
            uhi = ce + self.shift - 2 if ce < EPROP_INF_STEPS else EPROP_INF_STEPS
            if uhi > t_now + 1:
                uhi = t_now + 1
            u = ulo
            while u <= uhi and eb < ee:
                if self.update_count[h, u % C] > 0:
                    rb = u - self.shift + 1
                    re = rb + c if c < EPROP_INF_STEPS else EPROP_INF_STEPS
                    if cb <= rb <= ce and rb < ee:
                        ee = rb
                    if cb <= re <= ce and re > eb:
                        eb = re
                u += 1
            if eb < self.front[h]:
                eb = self.front[h]
            if ee > self.end[h]:
                ee = self.end[h]
            key = eb
            while key < ee:
                erase(self, h, key)
                key += 1
            fix_front(self, h)
        # 3. drop everything before the first pending window
        if self.n_entries[h] > 0 and self.n_update_keys[h] > 0:
            keep = self.first_update_key[h] - self.shift + 1
            if self.front[h] < keep < self.end[h] and self.valid[h, keep % C]:
                key = self.front[h]
                while key < keep:
                    erase(self, h, key)
                    key += 1
                self.front[h] = keep

    cdef void prune_bsshslm(self, int64_t h) noexcept nogil:
        """At an interval start: erase the intervals between the first and last update key that are
        not keys, then everything before the first key (SPEC 5.5)."""
        cdef int64_t kmin, kmax, q, key, T = self.update_interval
        if not self.has_history[h] or self.n_entries[h] == 0 or self.n_update_keys[h] == 0:
            return
        kmin = self.first_update_key[h]
        kmax = kmin
        q = kmin
        while q <= self.end[h]:
            if self.update_count[h, q & self.cmask] > 0:
                kmax = q
            q += T
        q = kmin
        while q <= kmax:
            if self.update_count[h, q & self.cmask] == 0:
                key = q if q > self.front[h] else self.front[h]
                while key < q + T and key < self.end[h]:
                    erase(self, h, key)
                    key += 1
            q += T
        key = self.front[h]
        while key < kmin and key < self.end[h]:
            erase(self, h, key)
            key += 1
        fix_front(self, h)
        if self.n_entries[h] == 0:
            self.front[h] = self.end[h]

    cdef void complete_prefixes(self, int64_t n_rec, int64_t e_stop) noexcept nogil:
        """Fast path: recurrent entries < e_stop have their complete learning signal now (it is
        delivered at the window after readout iteration e + d_ro): write their R1, Q1."""
        cdef int64_t e, j
        for e in range(self.prefix_done if self.prefix_done > 0 else 0, e_stop):
            for j in range(n_rec):
                if self.has_history[j] and self.fast_class[j] >= 0:
                    prefix_complete(self, j, e)
        if e_stop > self.prefix_done:
            self.prefix_done = e_stop

    cdef bint needs_growth(self, int64_t n_h, int64_t n_rec, int64_t D, int64_t t_now,
                           bint bsshslm) noexcept nogil:
        """Before a window: room for D appends per history (and, bsshslm, for the firing-rate
        regulariser of every interval still referenced)."""
        cdef int64_t h, span
        for h in range(n_h):
            if self.has_history[h]:
                span = self.end[h] - (self.front[h] if self.front[h] < self.first_update_key[h]
                                      else self.first_update_key[h])
                # + shift: the fast path reads the prefix row of entry (window start - 1)
                if span + D + self.shift + 1 > self.capacity:
                    return True
        if bsshslm:
            for h in range(n_rec):
                if self.has_history[h] and self.n_update_keys[h] > 0 and \
                        (t_now - self.first_update_key[h]) // self.update_interval + 4 > self.n_fr_intervals:
                    return True
        return False
