"""Event-driven compiled core (step-by-step reference path, eprop_fast_path=False) vs the dense
time-driven oracle (eprop_dist/reference.py) on randomised
small networks: all four recurrent models (mixed), both optimizers, both optimizer modes, finite and
infinite cutoff, flushes on and off, duplicate input spikes, batching, weight clipping."""
import itertools

import numpy as np
import pytest

from api_cases import random_case, run_core
from eprop_dist import reference as R

SIGNALS = ("V_m", "surrogate_gradient", "learning_signal", "readout_signal", "target_signal", "error_signal",
           "V_m_out")


def sorted_events(w):
    o = np.lexsort((w["target"], w["sender"], w["stamp"]))
    return {k: np.asarray(v)[o] for k, v in w.items()}


def assert_same(ref, got, rtol=1e-10):
    np.testing.assert_array_equal(got["spikes"], ref["spikes"])
    for f in SIGNALS:
        np.testing.assert_allclose(got[f], ref[f], rtol=rtol, atol=1e-13, err_msg=f)
    a, b = sorted_events(ref["weight_events"]), sorted_events(got["weight_events"])
    for key in ("stamp", "sender", "target"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=rtol, atol=1e-15)


CASES = [c for c in itertools.product([1, 2, 3], ["adam", "gradient_descent"], [True, False], [np.inf, 12.0])]


@pytest.mark.parametrize("seed,opt,each,cutoff", CASES)
def test_random_network(seed, opt, each, cutoff):
    flush = 25.0 if seed % 2 else np.inf
    case = random_case(seed, optimizer=opt, each_step=each, cutoff=cutoff, flush=flush)
    ref = R.run_eprop_plus(**case)
    got = run_core(case, fast_path=False)
    assert ref["spikes"].sum() > 100 and len(ref["weight_events"]["stamp"]) > 1000   # the net is active
    assert_same(ref, got)
    # learning happened: transmitted weights differ from the initial ones
    w = got["weight_events"]["weight"]
    assert np.unique(np.round(w, 12)).size > 100


@pytest.mark.parametrize("model", ["eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt"])
def test_single_model_network(model):
    case = random_case(11, models=model, optimizer="adam", each_step=True, cutoff=20.0, flush=30.0)
    assert_same(R.run_eprop_plus(**case), run_core(case, fast_path=False))


def test_cutoff_zero_and_one():
    for cut in (0.0, 1.0, 2.0):
        case = random_case(5, optimizer="adam", each_step=False, cutoff=cut)
        assert_same(R.run_eprop_plus(**case), run_core(case, fast_path=False))


@pytest.mark.parametrize("opt", ["adam", "gradient_descent"])
def test_ignore_and_spike_neurons(opt):
    """Half of the recurrent neurons spike on the forced schedule (SPEC 1.7); dynamics, surrogate
    gradients and learning go on as usual."""
    case = random_case(21, optimizer=opt, each_step=opt == "adam", cutoff=30.0, flush=40.0)
    n_rec = case["W_in"].shape[0]
    rng = np.random.default_rng(0)
    case["rec_params"]["ignore_and_spike"] = np.arange(n_rec) % 2 == 0
    case["rec_params"]["ignore_and_spike_offset"] = rng.integers(1, 20, n_rec).astype(float)
    case["rec_params"]["ignore_and_spike_interval"] = rng.integers(5, 30, n_rec).astype(float)
    ref = R.run_eprop_plus(**case)
    got = run_core(case, fast_path=False)
    forced = got["spikes"][:, ::2]
    assert forced.sum() > 50
    assert_same(ref, got)
