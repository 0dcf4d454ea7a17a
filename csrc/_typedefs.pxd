# Types named once (DESIGN 3). Matching NumPy dtypes live in eprop_dist/state.py:
#   gid_t <-> np.int64, lid_t <-> np.int32, real_t <-> np.float64, step_t <-> np.int64
from libc.stdint cimport int64_t, int32_t, uint64_t, uint8_t

ctypedef int64_t gid_t      # global neuron id (creation order, 1-based like NEST node ids)
ctypedef int32_t lid_t      # index into this rank's arrays
ctypedef double real_t      # all state and parameters are float64
ctypedef int64_t step_t     # time in steps of dt

# "infinitely many steps" (no cutoff, no flush): 2^60, also exported to Python as INF_STEPS
cdef extern from *:
    """
    #ifndef EPROP_INF_STEPS
    #define EPROP_INF_STEPS ((long long)1 << 60)
    #endif
    """
    long long EPROP_INF_STEPS


cdef inline int64_t crem(int64_t a, int64_t b) noexcept nogil:
    """C++ remainder (sign of the dividend), as NEST's bsshslm interval logic uses it."""
    return a % b     # cdivision=True (setup.py): C semantics
