# Connection rules and random connection parameters, run per rank for its local targets only.
# All draws are keyed by (rng_seed, block index, target gid, counter) (csrc/rng.pxd), so every rank
# builds exactly its share of the same global network.
cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.math cimport sqrt, log, cos
from rng cimport u01, mix64

cdef double TWO_PI = 6.283185307179586

# counter offsets of the sub-streams of one target
cdef uint64_t C_SRC = 0
cdef uint64_t C_WEIGHT = (<uint64_t>1) << 40


def fixed_indegree(const int64_t[::1] tgt,      # IN (n_t,) local target gids
                   const int64_t[::1] pool,     # IN (n_pool,) candidate source gids
                   int64_t k, uint64_t seed, uint64_t block, bint autapses, bint multapses,
                   int64_t[::1] out_src,        # OUT (n_t*k,) source gid of connection j*k+i
                   int64_t[::1] table):         # scratch (power of two >= 2k), any content
    """For each target draw k sources uniformly from pool (NEST fixed_indegree)."""
    cdef int64_t n_t = tgt.shape[0], n_pool = pool.shape[0], j, i, idx, g, h, mask = table.shape[0] - 1
    cdef uint64_t c
    with nogil:
        for j in range(n_t):
            if not multapses:
                for h in range(table.shape[0]):
                    table[h] = -1
            c = C_SRC
            i = 0
            while i < k:
                idx = <int64_t>(u01(seed, block, <uint64_t>tgt[j], c) * n_pool)
                c += 1
                if idx >= n_pool:
                    idx = n_pool - 1
                g = pool[idx]
                if not autapses and g == tgt[j]:
                    continue
                if not multapses:
                    h = <int64_t>(mix64(<uint64_t>g) & <uint64_t>mask)
                    while table[h] != -1 and table[h] != g:
                        h = (h + 1) & mask
                    if table[h] == g:
                        continue
                    table[h] = g
                out_src[j * k + i] = g
                i += 1


def pairwise_bernoulli_count(const int64_t[::1] tgt, const int64_t[::1] pool, double p,
                             uint64_t seed, uint64_t block, bint autapses,
                             int64_t[::1] out_counts):   # OUT (n_t,) connections per target
    cdef int64_t n_t = tgt.shape[0], n_pool = pool.shape[0], j, i, n
    with nogil:
        for j in range(n_t):
            n = 0
            for i in range(n_pool):
                if (autapses or pool[i] != tgt[j]) and u01(seed, block, <uint64_t>tgt[j], <uint64_t>i) < p:
                    n += 1
            out_counts[j] = n


def pairwise_bernoulli_fill(const int64_t[::1] tgt, const int64_t[::1] pool, double p,
                            uint64_t seed, uint64_t block, bint autapses,
                            int64_t[::1] out_src):       # OUT (sum counts,) sources, target-major
    cdef int64_t n_t = tgt.shape[0], n_pool = pool.shape[0], j, i, n = 0
    with nogil:
        for j in range(n_t):
            for i in range(n_pool):
                if (autapses or pool[i] != tgt[j]) and u01(seed, block, <uint64_t>tgt[j], <uint64_t>i) < p:
                    out_src[n] = pool[i]
                    n += 1


def random_values(int dist, double a, double b, uint64_t seed, uint64_t block,
                  const int64_t[::1] tgt,          # IN (n,) target gid of each connection
                  const int64_t[::1] rank_in_tgt,  # IN (n,) index of the connection among its target's
                  double[::1] out):                # OUT (n,)
    """dist 0: normal(mean a, std b) by Box-Muller; dist 1: uniform [a, b)."""
    cdef int64_t n = tgt.shape[0], j
    cdef double u1, u2
    cdef uint64_t c
    with nogil:
        for j in range(n):
            c = C_WEIGHT + 2 * <uint64_t>rank_in_tgt[j]
            u1 = u01(seed, block, <uint64_t>tgt[j], c)
            if dist == 0:
                u2 = u01(seed, block, <uint64_t>tgt[j], c + 1)
                out[j] = a + b * sqrt(-2.0 * log(1.0 - u1)) * cos(TWO_PI * u2)
            else:
                out[j] = a + (b - a) * u1
