# Devices replicated on every rank (SPEC 10.1): spike_generators (sorted spike keys), poisson
# generators (an independent train per connection, drawn by the delivery kernel from the
# counter-based stream (seed, gid, connection key, stamp)), step_rate_generators (piecewise
# constant rates read by readouts).
from libc.stdint cimport int64_t, int32_t, uint64_t
from _typedefs cimport real_t


cdef class Generators:
    # ---- spike generators: spike keys (see _delivery.pxd) in delivery order ----
    cdef public int64_t[::1] spike_gen_keys
    cdef public int64_t spike_gen_next            # first key not yet delivered
    # ---- poisson generators, by poisson index ----
    cdef public int32_t[::1] poisson_src_row      # source row (Delivery.src_row_of_gid)
    cdef public int64_t[::1] poisson_gid
    cdef public int64_t[::1] poisson_start, poisson_stop   # active for start < stamp <= stop (steps)
    cdef public real_t[::1] poisson_lambda        # expected spikes per step (rate * dt / 1000)
    cdef public uint64_t seed
    # ---- step rate generators, CSR by generator: times in steps (amplitude_times / dt) ----
    cdef public int64_t[::1] rate_indptr, rate_times
    cdef public real_t[::1] rate_values


cdef inline real_t rate_value(Generators gn, int64_t g, int64_t key) noexcept nogil:
    """Value of rate generator g after its update in iteration key-1 (amplitude time <= key)."""
    cdef int64_t lo = gn.rate_indptr[g], hi = gn.rate_indptr[g + 1], mid
    if hi == lo or gn.rate_times[lo] > key:
        return 0.0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if gn.rate_times[mid] <= key:
            lo = mid
        else:
            hi = mid
    return gn.rate_values[lo]
