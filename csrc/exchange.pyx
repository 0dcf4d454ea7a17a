# Pack and unpack kernels of the per-window exchange (DESIGN 4; the MPI calls themselves stay in
# eprop_dist/comm.py).  No allocation, no Python objects, no loop over ranks in Python.
#
# Message of one rank to rank r, int64 words:
#   [key, mult] pairs of the window's spikes whose source has synapses on r (alltoall) or all of them
#   (allgather), then the sender's readout errors as float64 bit patterns, readout-major (n_out_loc, D)
#   (bsshslm: then the softmax inputs u in the same layout).
from libc.stdint cimport int64_t, int32_t
from libc.string cimport memcpy

from _typedefs cimport real_t

DEF GID_MASK = 0x7FFFFFFF


def pack(const int64_t[::1] spikes,      # IN (2*n_spk) pairs key, mult of the window
         int64_t n_spk,                  # IN number of pairs
         const real_t[:, ::1] err_loc,   # IN (D, n_out_loc) errors of this window
         const real_t[:, ::1] u_loc,     # IN (D, n_out_loc) softmax inputs (read only if with_u)
         bint with_u,                    # IN bsshslm: append u after the errors
         const int64_t[::1] dst_ptr,     # IN (n_slots+1) CSR: destinations of local slot gid // n_ranks
         const int32_t[::1] dst_rank,    # IN (nnz) destination ranks, ascending within a slot
         bint routed,                    # IN False: every spike to every rank (one copy, allgather)
         int64_t n_ranks,                # IN
         int64_t[::1] sendcounts,        # OUT (n_ranks) words per destination (routed) / [0] total
         int64_t[::1] sdispl,            # OUT (n_ranks) offsets of the destinations' segments
         int64_t[::1] cursor,            # SCRATCH (n_ranks)
         int64_t[::1] sendbuf):          # OUT packed words; capacity checked
    """Pack one window's message(s).  Returns the number of words written, or -(words needed)
    when `sendbuf` is too small (nothing written; the caller grows it and calls again)."""
    return _pack(spikes, n_spk, err_loc, u_loc, with_u, dst_ptr, dst_rank, routed, n_ranks, sendcounts, sdispl,
                 cursor, sendbuf)


cdef int64_t _pack(const int64_t[::1] spikes, int64_t n_spk, const real_t[:, ::1] err_loc,
                   const real_t[:, ::1] u_loc, bint with_u, const int64_t[::1] dst_ptr,
                   const int32_t[::1] dst_rank, bint routed, int64_t n_ranks, int64_t[::1] sendcounts,
                   int64_t[::1] sdispl, int64_t[::1] cursor, int64_t[::1] sendbuf) noexcept nogil:
    cdef int64_t i, q, r, lid, key, total, pos
    cdef int64_t n_err = err_loc.shape[1] * err_loc.shape[0] * (2 if with_u else 1)
    if True:
        if not routed:
            total = 2 * n_spk + n_err
            if total > sendbuf.shape[0]:
                return -total
            sendcounts[0] = total
            sdispl[0] = 0
            for i in range(2 * n_spk):
                sendbuf[i] = spikes[i]
            _put_errors(err_loc, u_loc, with_u, sendbuf, 2 * n_spk)
            return total
        for r in range(n_ranks):
            sendcounts[r] = n_err
        for i in range(n_spk):
            lid = (spikes[2 * i] & GID_MASK) // n_ranks
            for q in range(dst_ptr[lid], dst_ptr[lid + 1]):
                sendcounts[dst_rank[q]] += 2
        total = 0
        for r in range(n_ranks):
            sdispl[r] = total
            cursor[r] = total
            total += sendcounts[r]
        if total > sendbuf.shape[0]:
            return -total
        for i in range(n_spk):
            key = spikes[2 * i]
            lid = (key & GID_MASK) // n_ranks
            for q in range(dst_ptr[lid], dst_ptr[lid + 1]):
                r = dst_rank[q]
                pos = cursor[r]
                sendbuf[pos] = key
                sendbuf[pos + 1] = spikes[2 * i + 1]
                cursor[r] = pos + 2
        for r in range(n_ranks):
            _put_errors(err_loc, u_loc, with_u, sendbuf, cursor[r])
    return total


cdef inline void _put_errors(const real_t[:, ::1] err_loc, const real_t[:, ::1] u_loc, bint with_u,
                             int64_t[::1] buf, int64_t pos) noexcept nogil:
    cdef int64_t j, t, D = err_loc.shape[0], n_out = err_loc.shape[1]
    cdef real_t x
    for j in range(n_out):
        for t in range(D):
            x = err_loc[t, j]
            memcpy(&buf[pos], &x, 8)
            pos += 1
    if with_u:
        for j in range(n_out):
            for t in range(D):
                x = u_loc[t, j]
                memcpy(&buf[pos], &x, 8)
                pos += 1


def unpack(const int64_t[::1] recv,       # IN messages of all ranks in rank order
           const int64_t[::1] recvcounts,  # IN (n_ranks) words from each rank
           const int64_t[::1] n_out_of,    # IN (n_ranks) readouts owned by each rank
           const int64_t[::1] err_perm,    # IN (n_out_global) global readout index, in rank order
           bint with_u,                    # IN bsshslm messages carry u after the errors
           int64_t[::1] in_buf,            # OUT spike pairs of all ranks, in rank order (capacity checked)
           real_t[:, ::1] err_all,         # OUT (D, n_out_global) errors of the window
           real_t[::1] u_all):             # OUT (n_out_global) last-step u (bsshslm)
    """Split the received words: spikes -> in_buf, errors -> err_all (u -> u_all).  Returns the
    number of spike words, or -(words needed, incl. 2 spare) if in_buf is too small (nothing written)."""
    return _unpack(recv, recvcounts, n_out_of, err_perm, with_u, in_buf, err_all, u_all)


cdef int64_t _unpack(const int64_t[::1] recv, const int64_t[::1] recvcounts, const int64_t[::1] n_out_of,
                     const int64_t[::1] err_perm, bint with_u, int64_t[::1] in_buf, real_t[:, ::1] err_all,
                     real_t[::1] u_all) noexcept nogil:
    cdef int64_t n_ranks = recvcounts.shape[0]
    cdef int64_t D = err_all.shape[0]
    cdef int64_t r, pos, w, k, i, j, t, g, m
    cdef int64_t per = 2 if with_u else 1
    cdef real_t x
    if True:
        w = 0
        for r in range(n_ranks):
            w += recvcounts[r] - n_out_of[r] * D * per
        if w + 2 > in_buf.shape[0]:     # the core keeps two spare words
            return -(w + 2)
        pos = 0
        w = 0
        g = 0
        for r in range(n_ranks):
            m = n_out_of[r]
            k = recvcounts[r] - m * D * per
            for i in range(k):
                in_buf[w + i] = recv[pos + i]
            w += k
            pos += k
            for j in range(m):
                for t in range(D):
                    memcpy(&x, &recv[pos], 8)
                    err_all[t, err_perm[g + j]] = x
                    pos += 1
            if with_u:
                for j in range(m):
                    pos += D - 1
                    memcpy(&x, &recv[pos], 8)
                    u_all[err_perm[g + j]] = x
                    pos += 1
            g += m
    return w
