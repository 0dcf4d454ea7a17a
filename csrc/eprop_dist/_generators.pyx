# Device state; rate_value is inline in _generators.pxd, device events are added to the incoming
# spikes by Delivery.add_device_events (_delivery.pyx).

cdef class Generators:
    pass
