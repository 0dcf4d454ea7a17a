"""The routing plan of the directed exchange holds exactly what this rank sends (one entry per (own
neuron, rank with synapses from it) pair) and both exchange schemes deliver the same events."""
import numpy as np
import pytest

import eprop_dist as nest
from eprop_dist.scaling.study import scaled_network, validate
from eprop_dist.scaling.worker import _events, _local_spikes, build_network

pytestmark = pytest.mark.mpi


def _net(exchange, fb):
    _, net, _ = validate({"study": {"name": "x", "kind": "strong", "ranks": [1]},
                          "network": {"n_rec": 300, "n_in": 30, "k_rec": 7, "k_in": 3, "n_out": 4, "k_out": 9,
                                      "feedback_outdegree": fb, "rate": 50.0, "exchange": exchange}})
    return scaled_network(net, 1.0)


@pytest.mark.parametrize("fb", [0, 11])
def test_plan_is_what_this_rank_sends(fb):
    k = nest.Kernel()
    build_network(nest, k, _net("alltoall", fb), seed=5)
    k.Simulate(1.0)                 # the exchange is planned at the first Simulate (collective)
    sim = k._sim
    comm, st = sim.comm, sim.st
    n, me = comm.size, comm.rank
    srcs = np.unique(st.sources[st.kind_of[st.sources] > 0])
    every = comm.allgather(srcs)
    mine = np.arange(me, st.gid2tid.size, n) if n > 1 else np.arange(st.gid2tid.size)
    if n == 1:
        assert sim._dst_rank.size == 0        # a serial run plans no exchange
        return
    pairs = {int(g): [r for r in range(n) if np.isin(g, every[r])] for g in mine}
    assert sim._dst_rank.size == sum(len(v) for v in pairs.values())
    for g, ranks in pairs.items():
        s = g // n
        assert list(sim._dst_rank[sim._dst_ptr[s]:sim._dst_ptr[s + 1]]) == ranks
    # memory: 8 B per own neuron slot + 4 B per pair, nothing of size n_ranks x n_global
    n_pairs = sum(len(v) for v in pairs.values())
    assert sim._dst_rank.nbytes + sim._dst_ptr.nbytes == 4 * n_pairs + 8 * ((st.gid2tid.size - 1) // n + 2)
    assert not hasattr(sim, "_need")


def test_both_schemes_deliver_the_same_events():
    got = {}
    for x in ("alltoall", "allgather"):
        k = nest.Kernel()
        build_network(nest, k, _net(x, 11), seed=5)
        k.Simulate(60.0)
        c = k._sim.core
        got[x] = (k._sim.comm.allreduce_sum(_local_spikes(c)), k._sim.comm.allreduce_sum(_events(c)),
                  np.asarray(c.syn.weight).copy())
    assert got["alltoall"][:2] == got["allgather"][:2] and got["alltoall"][1] > 0
    np.testing.assert_array_equal(got["alltoall"][2], got["allgather"][2])
