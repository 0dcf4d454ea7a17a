"""The compiled exchange kernels (csrc/exchange.pyx) against a NumPy statement of the message format:
routed packing, all-to-all copies, error/u layout, and the grow protocol (negative return)."""
import numpy as np
import pytest

from eprop_dist import _exchange


def _plan(rng, n, me, n_global):
    mine = np.arange(1, n_global + 1)
    mine = mine[mine % n == me]
    dst = {int(g): np.sort(rng.choice(n, rng.integers(0, n + 1), replace=False)).astype(np.int32) for g in mine}
    n_slots = n_global // n + 1
    cnt = np.zeros(n_slots, np.int64)
    for g, d in dst.items():
        cnt[g // n] = d.size
    ptr = np.zeros(n_slots + 1, np.int64)
    np.cumsum(cnt, out=ptr[1:])
    rank = np.concatenate([dst[g] for g in sorted(dst)]) if dst else np.zeros(0, np.int32)
    return mine, dst, ptr, rank


@pytest.mark.parametrize("n,with_u,D", [(1, False, 1), (3, False, 1), (4, True, 2), (7, False, 3)])
def test_pack_routes_and_unpack_inverts(n, with_u, D):
    rng = np.random.default_rng(n * 10 + D)
    me, n_global = n - 1, 60
    mine, dst, ptr, rank = _plan(rng, n, me, n_global)
    g = rng.choice(mine, 9)                                # repeated sources are allowed
    spk = np.zeros(2 * g.size + 6, np.int64)               # spare words after the window's pairs
    spk[0:2 * g.size:2] = ((2 * rng.integers(1, 50, g.size)) << 31) | g
    spk[1:2 * g.size:2] = rng.integers(0, 3, g.size)
    n_out = 2
    err = rng.normal(size=(D, n_out))
    u = rng.normal(size=(D, n_out))
    sc, sd, cur = (np.zeros(n, np.int64) for _ in range(3))
    small = np.zeros(3, np.int64)
    need = _exchange.pack(spk, g.size, err, u, with_u, ptr, rank, True, n, sc, sd, cur, small)
    assert need < 0 and not small.any()                     # too small: nothing written, size asked
    buf = np.zeros(-need, np.int64)
    w = _exchange.pack(spk, g.size, err, u, with_u, ptr, rank, True, n, sc, sd, cur, buf)
    assert w == -need == sc.sum()
    tail = np.concatenate([err.T.ravel(), u.T.ravel()] if with_u else [err.T.ravel()]).view(np.int64)
    for r in range(n):
        keep = [i for i in range(g.size) if r in dst[int(g[i])]]
        pairs = np.stack([spk[0:2 * g.size:2][keep], spk[1:2 * g.size:2][keep]], 1).ravel()
        np.testing.assert_array_equal(buf[sd[r]:sd[r] + sc[r]], np.concatenate([pairs, tail]))
    # all-to-all copy (allgather): one message, all pairs
    big = np.zeros(2 * g.size + tail.size, np.int64)
    w1 = _exchange.pack(spk, g.size, err, u, with_u, ptr, rank, False, n, sc, sd, cur, big)
    assert w1 == big.size == sc[0]
    np.testing.assert_array_equal(big, np.concatenate([spk[:2 * g.size], tail]))
    # unpack: n messages as received by one rank (each rank r owns n_out_of[r] readouts)
    n_out_of = np.array([(r % 3) for r in range(n)], np.int64)
    n_glob = int(n_out_of.sum())
    perm = rng.permutation(n_glob).astype(np.int64)
    msgs, want_spk, want_err, want_u = [], [], np.zeros((D, n_glob)), np.zeros(n_glob)
    gi = 0
    for r in range(n):
        k = int(rng.integers(0, 4))
        pairs = rng.integers(0, 2**40, 2 * k)
        e = rng.normal(size=(n_out_of[r], D))
        uu = rng.normal(size=(n_out_of[r], D))
        msgs.append(np.concatenate([pairs, e.ravel().view(np.int64)] + ([uu.ravel().view(np.int64)] if with_u else [])))
        want_spk.append(pairs)
        for j in range(n_out_of[r]):
            want_err[:, perm[gi + j]] = e[j]
            want_u[perm[gi + j]] = uu[j, -1]
        gi += n_out_of[r]
    recv = np.concatenate(msgs).astype(np.int64)
    rc = np.array([m.size for m in msgs], np.int64)
    err_all, u_all = np.zeros((D, n_glob)), np.zeros(n_glob)
    tiny = np.zeros(1, np.int64)
    k = _exchange.unpack(recv, rc, n_out_of, perm, with_u, tiny, err_all, u_all)
    total = sum(p.size for p in want_spk)
    assert k == -(total + 2) and not err_all.any()
    in_buf = np.zeros(total + 2, np.int64)
    k = _exchange.unpack(recv, rc, n_out_of, perm, with_u, in_buf, err_all, u_all)
    assert k == total
    np.testing.assert_array_equal(in_buf[:k], np.concatenate(want_spk))
    np.testing.assert_array_equal(err_all, want_err)
    if with_u:
        np.testing.assert_array_equal(u_all, want_u)
