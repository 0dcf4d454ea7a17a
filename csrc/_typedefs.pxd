# Types named once (DESIGN 3). Matching NumPy dtypes live in eprop_dist/state.py:
#   gid_t <-> np.int64, lid_t <-> np.int32, real_t <-> np.float64, step_t <-> np.int64
from libc.stdint cimport int64_t, int32_t, uint64_t, uint8_t

ctypedef int64_t gid_t      # global neuron id (creation order, 1-based like NEST node ids)
ctypedef int32_t lid_t      # index into this rank's arrays
ctypedef double real_t      # all state and parameters are float64
ctypedef int64_t step_t     # time in steps of dt
