"""Run under ``mpiexec -n N python -m pytest --with-mpi tests/mpi``: the NEST reference numbers, the
oracle and the serial engine give the same results on N ranks.  Expectations read the communicator
size; nothing assumes a particular N."""
import numpy as np
import pytest

import nest_cases as nc
from eprop_dist.comm import SerialComm

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def comm():
    from mpi4py import MPI
    return MPI.COMM_WORLD


REFS = nc.load_references()


@pytest.mark.parametrize("model,opt", [("eprop_iaf", "adam"), ("eprop_iaf_adapt", "gradient_descent")])
def test_nest_regression_on_all_ranks(comm, model, opt):
    from test_nest_references import nest_sine_regression
    loss, k = nest_sine_regression(model, opt)
    assert k._sim.comm.size == comm.Get_size()
    np.testing.assert_allclose(loss, REFS["eprop_plus_regression"]["loss"][f"{model}/{opt}"], rtol=1e-8)


def test_nest_history_cleaning_and_surrogates(comm):
    from test_nest_references import test_history_cleaning_matches_nest, test_surrogate_gradients_match_nest
    test_history_cleaning_matches_nest("eprop_iaf", 5.0)
    test_surrogate_gradients_match_nest("arctan_derivative")


@pytest.mark.parametrize("seed,opt,each", [(1, "adam", True), (2, "gradient_descent", False)])
def test_core_vs_oracle_on_all_ranks(comm, seed, opt, each):
    from api_cases import random_case, run_core
    from eprop_dist import reference as R
    from test_core_vs_reference import assert_same
    case = random_case(seed, optimizer=opt, each_step=each, cutoff=15.0, flush=25.0)
    got = run_core(case, fast_path=False)         # the oracle is matched by the step path
    assert got["kernel"]._sim.comm.size == comm.Get_size()
    assert_same(R.run_eprop_plus(**case), got)


@pytest.mark.parametrize("exchange", ["allgather", "alltoall"])
def test_invariance_net_equals_serial(comm, exchange):
    import invariance_net as inv
    k, par = inv.run(delay=2, steps=300, exchange=exchange, chunks=3)
    _, ser = inv.run(delay=2, steps=300, comm=SerialComm())
    assert k._sim.comm.size == comm.Get_size()
    for key in ser:
        np.testing.assert_array_equal(par[key], ser[key], err_msg=key)


@pytest.mark.parametrize("exchange", ["allgather", "alltoall"])
def test_partial_windows_on_all_ranks(comm, exchange):
    """Issue 9 item 4: Simulate times that the window D = 3 does not divide (shorter last windows,
    later windows not aligned to multiples of D) give on N ranks what one rank gives, and what a
    one-step window gives up to the time both have collected."""
    from test_partial_window import COMPARE, run_parts
    parts = [7.0, 5.0, 1.0, 14.0, 10.0]
    k, par = run_parts(parts, exchange=exchange)
    assert k._sim.comm.size == comm.Get_size() and k._sim.D == 3 and k._sim.core.last_len == 1
    _, ser = run_parts(parts, comm=SerialComm())
    for key in COMPARE + ("c_w",):
        np.testing.assert_array_equal(par[key], ser[key], err_msg=key)
    _, one = run_parts([37.0], comm_window=1, comm=SerialComm())
    keep_p, keep_1 = par["spk_t"] <= 36.0, one["spk_t"] <= 36.0
    assert keep_p.sum() > 50
    np.testing.assert_array_equal(par["spk_t"][keep_p], one["spk_t"][keep_1])
    np.testing.assert_array_equal(par["spk_s"][keep_p], one["spk_s"][keep_1])
    keep_p, keep_1 = par["wr_t"] <= 36.0, one["wr_t"] <= 36.0
    np.testing.assert_array_equal(par["wr_w"][keep_p], one["wr_w"][keep_1])


def test_settled_windows_equal_serial(comm):
    """Internal flushes (eprop_settle_windows) run per rank on its own synapses: the same numbers."""
    from test_settle import silent_sources
    k, par = silent_sources(True, steps=900, active=300, delay=2.0)
    _, ser = silent_sources(True, steps=900, active=300, delay=2.0, comm=SerialComm())
    assert k._sim.comm.size == comm.Get_size()
    assert comm.allreduce(k._sim.core.syn.n_settled) > 200
    for key in ser:
        np.testing.assert_array_equal(par[key], ser[key], err_msg=key)


def test_each_rank_builds_only_its_share(comm):
    import eprop_dist
    k = eprop_dist.Kernel()
    n = 600
    a = k.Create("eprop_iaf", n)
    k.Connect(a, a, {"rule": "fixed_indegree", "indegree": 20}, {"synapse_model": "eprop_synapse"})
    k.Simulate(1.0)
    core = k._sim.core
    size, rank = comm.Get_size(), comm.Get_rank()
    assert core.n_rec == len([g for g in a.gids if g % size == rank])
    assert np.asarray(core.syn.weight).size == 20 * core.n_rec          # only incoming synapses of local targets
    total = comm.allreduce(np.asarray(core.syn.weight).size)
    assert total == 20 * n


def test_bsshslm_classification_on_all_ranks(comm):
    """Softmax readouts spread over ranks: the per-step exchange of their signals (SPEC 10.2) gives
    the oracle's numbers on any rank count."""
    import nest_cases as nc
    from api_cases import run_bss_core
    from eprop_dist import reference_bsshslm as RB
    from test_bsshslm import assert_same
    case = nc.bsshslm_classification_case(1, n_iter=2)
    kw = nc.bsshslm_run_kwargs(case)
    got = run_bss_core(kw)
    assert got["kernel"]._sim.comm.size == comm.Get_size()
    assert_same(RB.run_bsshslm(**kw), got)


@pytest.mark.parametrize("seed", [1, 3, 9])
def test_bsshslm_random_on_all_ranks(comm, seed):
    from api_cases import run_bss_core
    from eprop_dist import reference_bsshslm as RB
    from test_bsshslm import assert_same
    from test_reference_bsshslm import _random_net
    case = _random_net(seed)
    assert_same(RB.run_bsshslm(**case), run_bss_core(case))


def test_bsshslm_regression_on_all_ranks(comm):
    from test_bsshslm import test_regression_matches_nest_and_tensorflow
    test_regression_matches_nest_and_tensorflow()
