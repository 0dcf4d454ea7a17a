"""Compact multimeter storage (issue 8: recorder memory).

The kernels write multimeter samples into a raw buffer of ``(t int64, slot int32, value float64)``
triples (``core.recording.sample_*``, 20 bytes per value).  `MultimeterStore.drain` moves them into
one table per multimeter: rows are sampled iterations (ascending), columns are (sender, field) pairs,
8 bytes per value plus 1 byte per (row, sender) saying whether that event exists.  The raw buffer is
then emptied, so it never grows past RAW_CAP values (1.3 MB; the simulation drains it instead of
growing it further), and ``events()`` needs no sort: rows are already in time order and
senders ascending within a row, which is NEST's order (time, then sender).

Rows live in chunks of `CHUNK` rows (no doubling copies).  Deferred samples (``learning_signal`` of
the previous window, written one delivery later) land in rows that already exist; a sample older
than the newest row with no row of its own is an internal error (it cannot happen with the kernels'
recording order, see _recording.pyx)."""
from __future__ import annotations

import numpy as np

from .errors import KernelException

CHUNK = 4096
RAW_CAP = 1 << 16      # the raw buffer grows by doubling up to this many values, then it is drained


class _Table:
    """Samples of one multimeter on this rank."""

    def __init__(self, senders, fields):
        self.senders = senders            # (n_s,) gids ascending
        self.fields = fields              # (n_f,) field codes ascending
        self.t = []                       # chunks of row iterations (int64, CHUNK)
        self.vals = []                    # chunks (CHUNK, n_s, n_f) float64, NaN where not sampled
        self.pres = []                    # chunks (CHUNK, n_s) bool: an event exists
        self.n = 0                        # rows in use

    def nbytes(self):
        return sum(a.nbytes for a in self.t) + sum(a.nbytes for a in self.vals) + sum(a.nbytes for a in self.pres)

    def _add_rows(self, new_t):
        i = 0
        while i < new_t.size:
            c, r = divmod(self.n, CHUNK)
            if c == len(self.t):
                self.t.append(np.zeros(CHUNK, np.int64))
                self.vals.append(np.full((CHUNK, self.senders.size, self.fields.size), np.nan))
                self.pres.append(np.zeros((CHUNK, self.senders.size), bool))
            k = min(CHUNK - r, new_t.size - i)
            self.t[c][r:r + k] = new_t[i:i + k]
            self.n += k
            i += k

    def _last_t(self):
        if self.n == 0:
            return None
        c, r = divmod(self.n - 1, CHUNK)
        return int(self.t[c][r])

    def write(self, t, s_col, f_col, v):
        last = self._last_t()
        ut = np.unique(t)
        self._add_rows(ut if last is None else ut[ut > last])
        # row of each sample: search the chunks that can hold it (newest first; deferred samples
        # are at most a few windows old)
        row = np.full(t.size, -1, np.int64)
        todo = np.ones(t.size, bool)
        c = (self.n - 1) // CHUNK
        while todo.any() and c >= 0:
            nr = min(CHUNK, self.n - c * CHUNK)
            ct = self.t[c][:nr]
            tt = t[todo]
            j = np.searchsorted(ct, tt)
            jj = np.minimum(j, nr - 1)
            hit = ct[jj] == tt
            idx = np.flatnonzero(todo)
            row[idx[hit]] = c * CHUNK + jj[hit]
            todo[idx[hit]] = False
            if todo.any() and tt[~hit].min() >= ct[0]:
                break                       # not in this chunk and not in an older one
            c -= 1
        if todo.any():
            raise KernelException(f"multimeter sample at iteration {int(t[todo][0])} has no row (internal)")
        rc, rr = np.divmod(row, CHUNK)
        for c in np.unique(rc):
            sel = rc == c
            self.vals[c][rr[sel], s_col[sel], f_col[sel]] = v[sel]
            self.pres[c][rr[sel], s_col[sel]] = True

    def events(self, t_visible, codes, dt):
        """Events with iteration t < t_visible: times ((t + 1) * dt), senders, one column per code
        (NaN where that field was not sampled)."""
        if self.n == 0:
            return np.zeros(0), np.zeros(0, np.int64), [np.zeros(0) for _ in codes]
        t = np.concatenate(self.t)[:self.n]
        nr = int(np.searchsorted(t, t_visible))
        nc = -(-nr // CHUNK)
        n_s = self.senders.size
        pres = np.concatenate([p for p in self.pres[:nc]])[:nr] if nr else np.zeros((0, n_s), bool)
        full = bool(pres.all())
        if full:                       # every sender in every row (the usual case): no index arrays
            times = np.repeat((t[:nr] + 1) * dt, n_s)
            senders = np.tile(self.senders, nr)
            flat = None
        else:
            flat = pres.reshape(-1)
            ri, si = np.divmod(np.flatnonzero(flat), n_s)
            times = (t[ri] + 1) * dt
            senders = self.senders[si]
            del ri, si
        del pres
        cols = []
        for code in codes:
            j = np.searchsorted(self.fields, code)
            if j < self.fields.size and self.fields[j] == code:
                col = np.concatenate([a[:, :, j] for a in self.vals[:nc]])[:nr].reshape(-1)
                if not full:
                    col = col[flat]
            else:
                col = np.full(times.size, np.nan)
            cols.append(col)
        return times, senders, cols


class MultimeterStore:
    """All multimeter tables of one rank; `drain(core)` empties the kernels' raw sample buffer."""

    def __init__(self, st):
        self.st = st
        sl_mm = np.asarray(st.sl_mm, np.int64)
        sl_tid = np.asarray(st.sl_tid, np.int64)
        sl_field = np.asarray(st.sl_field, np.int64)
        self.tables = {}
        self.slot_s = np.zeros(sl_mm.size, np.int64)
        self.slot_f = np.zeros(sl_mm.size, np.int64)
        tgt_gid = np.asarray(st.core.delivery.tgt_gid)
        sl_gid = tgt_gid[sl_tid] if sl_tid.size else np.zeros(0, np.int64)
        for m in np.unique(sl_mm):
            sel = np.flatnonzero(sl_mm == m)
            senders = np.unique(sl_gid[sel]).astype(np.int64)
            fields = np.unique(sl_field[sel])
            self.slot_s[sel] = np.searchsorted(senders, sl_gid[sel])
            self.slot_f[sel] = np.searchsorted(fields, sl_field[sel])
            self.tables[int(m)] = _Table(senders, fields)
        self.sl_mm = sl_mm

    def drain(self, core):
        """Move the raw samples into the tables and empty the raw buffer.  Returns their number."""
        rc = core.recording
        n = int(rc.n_samples)
        if n == 0:
            return 0
        t = np.asarray(rc.sample_t)[:n]
        slot = np.asarray(rc.sample_slot)[:n].astype(np.int64)
        v = np.asarray(rc.sample_value)[:n]
        m_of = self.sl_mm[slot]
        o = np.argsort(m_of, kind="stable")
        bounds = np.searchsorted(m_of[o], np.arange(int(self.sl_mm.max()) + 2))
        for m, tab in self.tables.items():
            idx = o[bounds[m]:bounds[m + 1]]
            if idx.size:
                s = slot[idx]
                tab.write(t[idx], self.slot_s[s], self.slot_f[s], v[idx])
        rc.n_samples = 0
        return n

    def events(self, m_idx, t_visible, codes, dt):
        tab = self.tables.get(int(m_idx))
        if tab is None:
            return np.zeros(0), np.zeros(0, np.int64), [np.zeros(0) for _ in codes]
        return tab.events(t_visible, codes, dt)

    def export(self):
        """Every stored value as raw samples (t, slot, value), the inverse of `drain` (checkpoints
        save them so; a resumed run drains them back into the same tables)."""
        ts, slots, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for m, tab in self.tables.items():
            if tab.n == 0:
                continue
            sel = np.flatnonzero(self.sl_mm == m)
            inv = np.full((tab.senders.size, tab.fields.size), -1, np.int64)
            inv[self.slot_s[sel], self.slot_f[sel]] = sel
            t = np.concatenate(tab.t)[:tab.n]
            v = np.concatenate(tab.vals)[:tab.n]                       # (rows, n_s, n_f)
            pres = np.concatenate(tab.pres)[:tab.n]
            r, si, fi = np.nonzero(pres[:, :, None] & ~np.isnan(v) & (inv >= 0)[None])
            ts.append(t[r])
            slots.append(inv[si, fi])
            vals.append(v[r, si, fi])
        return np.concatenate(ts), np.concatenate(slots), np.concatenate(vals)

    def nbytes(self):
        return sum(t.nbytes() for t in self.tables.values())
