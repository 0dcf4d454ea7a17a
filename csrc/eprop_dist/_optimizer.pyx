# Optimizer state container; the update rule is the inline `optimize` in _optimizer.pxd, compiled
# into the synapse kernels that call it once per gradient window (or per entry).

cdef class Optimizer:
    pass
