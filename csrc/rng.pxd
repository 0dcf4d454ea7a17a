# Counter-based random numbers (SplitMix64 finaliser over a 4-word key).  A draw is a pure function
# of (seed, a, b, c): streams are keyed by gid, never by rank (SPEC 10.1).
from libc.stdint cimport uint64_t
from libc.math cimport exp

cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94d049bb133111ebULL
    return z ^ (z >> 31)

cdef inline uint64_t key4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) noexcept nogil:
    cdef uint64_t h = mix64(seed + <uint64_t>0x9e3779b97f4a7c15ULL)
    h = mix64(h ^ (a * <uint64_t>0xd1b54a32d192ed03ULL))
    h = mix64(h ^ (b * <uint64_t>0xaef17502108ef2d9ULL))
    h = mix64(h ^ (c * <uint64_t>0xf39cc0605cedc835ULL))
    return h

cdef inline double u01(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) noexcept nogil:
    """Uniform in [0, 1) with 53 random bits."""
    return <double>(key4(seed, a, b, c) >> 11) * (1.0 / 9007199254740992.0)

cdef inline long poisson_count(double lam, double u) noexcept nogil:
    """Poisson(lam) by inversion of one uniform u (lam is small per step)."""
    cdef double p = exp(-lam), F = p
    cdef long n = 0
    while u > F and n < 100000:
        n += 1
        p *= lam / n
        F += p
    return n
