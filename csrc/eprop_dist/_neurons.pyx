# State containers of the local neurons; declarations and equations' homes: see _neurons.pxd.

cdef class RecurrentNeurons:
    pass


cdef class Readouts:
    pass


cdef class Parrots:
    pass
