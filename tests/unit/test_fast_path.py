"""The O(1) fast path of the gradient window (SPEC 10.4: window_fast in csrc/eprop_dist/_eprop_synapse.pyx,
process_entries_fast in _bsshslm_synapse.pyx) against the step-by-step reference path (kernel setting
eprop_fast_path=False) on the randomised networks of the other suites, both families: spikes equal,
recorded signals and weights at rtol 1e-8.  Every case also checks that the fast path really ran (its
counter), so a silent fallback to the step path fails."""
import itertools
import os
import sys

import numpy as np
import pytest

import nest_cases as nc
from api_cases import random_case, run_bss_core, run_core

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "invariance"))
import invariance_net as inv  # noqa: E402

SIGNALS = ("V_m", "surrogate_gradient", "learning_signal", "readout_signal", "target_signal", "error_signal",
           "V_m_out")
RTOL = 1e-8
ATOL = 1e-8   # Adam's update m/(sqrt(v)+eps) amplifies gradient rounding by ~eta/eps: signals near 0


def sorted_weights(w):
    o = np.lexsort((w["target"], w["sender"], w["stamp"]))
    return {k: np.asarray(v)[o] for k, v in w.items()}


def assert_close(step, fast):
    np.testing.assert_array_equal(fast["spikes"], step["spikes"])
    for f in SIGNALS:
        np.testing.assert_allclose(fast[f], step[f], rtol=RTOL, atol=ATOL, err_msg=f)
    a, b = sorted_weights(step["weight_events"]), sorted_weights(fast["weight_events"])
    for key in ("stamp", "sender", "target"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=RTOL, atol=ATOL)


def compare(case, min_fast=1):
    step = run_core(case, fast_path=False)
    fast = run_core(case, fast_path=True)
    assert step["kernel"]._sim.core.syn.n_fast_events == 0
    n_fast = fast["kernel"]._sim.core.syn.n_fast_events
    assert n_fast >= min_fast, f"fast path ran for {n_fast} events only"
    assert_close(step, fast)
    return n_fast


@pytest.mark.parametrize("seed,opt,cutoff", list(itertools.product([1, 2, 3], ["adam", "gradient_descent"],
                                                                     [np.inf, 12.0, 2.0])))
def test_random_network_per_spike(seed, opt, cutoff):
    """Mixed models (adaptive targets: window_adapt), flushes on for odd seeds."""
    flush = 25.0 if seed % 2 else np.inf
    case = random_case(seed, optimizer=opt, each_step=False, cutoff=cutoff, flush=flush)
    compare(case, min_fast=500)


@pytest.mark.parametrize("cutoff", [0.0, 1.0])
def test_tiny_cutoffs(cutoff):
    """Cutoffs below the z pipeline length: NEST's two-slot buffer carry (handled in ep_send)."""
    case = random_case(5, optimizer="gradient_descent", each_step=False, cutoff=cutoff)
    compare(case, min_fast=0)


@pytest.mark.parametrize("model", ["eprop_iaf", "eprop_iaf_psc_delta"])
def test_single_model_long_windows(model):
    """Infinite cutoff, sparse input: windows of hundreds of steps cross many blocks."""
    case = random_case(11, models=model, optimizer="gradient_descent", each_step=False, cutoff=np.inf,
                       n_steps=600)
    compare(case, min_fast=1000)


def test_each_step_mode_stays_on_step_path():
    case = random_case(4, optimizer="adam", each_step=True, cutoff=20.0)
    fast = run_core(case, fast_path=True)
    assert fast["kernel"]._sim.core.syn.n_fast_events == 0
    assert_close(run_core(case, fast_path=False), fast)


def test_ignore_and_spike():
    case = random_case(21, optimizer="gradient_descent", each_step=False, cutoff=30.0, flush=40.0)
    n_rec = case["W_in"].shape[0]
    rng = np.random.default_rng(0)
    case["rec_params"]["ignore_and_spike"] = np.arange(n_rec) % 2 == 0
    case["rec_params"]["ignore_and_spike_offset"] = rng.integers(1, 20, n_rec).astype(float)
    case["rec_params"]["ignore_and_spike_interval"] = rng.integers(5, 30, n_rec).astype(float)
    compare(case, min_fast=500)


@pytest.mark.parametrize("uniform", [True, False])
def test_delays_and_windows(uniform):
    """Delays > 1 (learning-signal shift != 2) and windows D = 1..3: fast == step to rtol 1e-8, and the
    fast path is window-invariant bit for bit."""
    step = inv.run(delay=3, comm_window=3, steps=402, uniform=uniform, fast_path=False)[1]
    kernels = {D: inv.run(delay=3, comm_window=D, steps=402, uniform=uniform) for D in (1, 2, 3)}
    assert kernels[3][0]._sim.core.syn.n_fast_events > 500
    assert all(kk._sim.core.syn.n_fast_adaptive > 100 for kk, _ in kernels.values())   # adaptive pops too
    runs = {D: r for D, (_, r) in kernels.items()}
    t_max = 399.0
    ref = inv.truncate(step, t_max)
    for D, r in runs.items():
        r = inv.truncate(r, t_max)
        np.testing.assert_array_equal(r["spk_t"], ref["spk_t"])
        np.testing.assert_array_equal(r["spk_s"], ref["spk_s"])
        np.testing.assert_allclose(r["wr_w"], ref["wr_w"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(r["y"], ref["y"], rtol=RTOL, atol=ATOL)
        for key in r:
            # final weights (c_*) are read before the last window's spikes were processed, which
            # depends on D (as in tests/invariance)
            if not key.startswith("c_"):
                np.testing.assert_array_equal(r[key], inv.truncate(runs[3], t_max)[key], err_msg=f"D={D} {key}")


# ---- adaptive targets (window_adapt: the epsilon recursion entry by entry on the fast path) -----------
ADAPTIVE = ("eprop_iaf_adapt", "eprop_iaf_psc_delta_adapt")


@pytest.mark.parametrize("model,cutoff,opt,flush", [
    (m, c, o, f) for m in ADAPTIVE for c in (0.0, 1.0, 2.0, 12.0, np.inf)
    for o, f in (("gradient_descent", np.inf), ("adam", 25.0))] + [
    (ADAPTIVE[0], 12.0, "gradient_descent", 25.0), (ADAPTIVE[1], np.inf, "adam", np.inf)])
def test_adaptive_targets(model, cutoff, opt, flush):
    """Only adaptive recurrent neurons: their windows take window_adapt (counted apart), recorded and
    not recorded (fast-only histories, settled windows); against the step path at rtol 1e-8 (the
    readouts' closed form rounds differently, so the rest follows at rounding level)."""
    case = random_case(31 + int(min(cutoff, 50.0)), models=model, optimizer=opt, each_step=False,
                       cutoff=cutoff, flush=flush)
    step = run_core(case, fast_path=False)
    fast = run_core(case, fast_path=True)
    core = fast["kernel"]._sim.core
    assert step["kernel"]._sim.core.syn.n_fast_adaptive == 0
    assert core.syn.n_fast_adaptive >= (200 if cutoff >= 1.0 else 0), core.syn.n_fast_adaptive
    assert_close(step, fast)
    quiet = run_core(case, fast_path=True, record_rec=False)
    core = quiet["kernel"]._sim.core
    assert np.asarray(core.history.fast_only)[:core.n_rec].all()
    assert core.syn.n_fast_adaptive >= (200 if cutoff >= 1.0 else 0)
    if 1.0 <= cutoff < np.inf:
        assert core.syn.n_settled > 20, core.syn.n_settled
    ref = run_core(case, fast_path=False, record_rec=False)
    np.testing.assert_array_equal(quiet["spikes"], ref["spikes"])
    for f in ("V_m_out", "readout_signal", "error_signal"):
        np.testing.assert_allclose(quiet[f], ref[f], rtol=RTOL, atol=ATOL, err_msg=f)
    a, b = sorted_weights(ref["weight_events"]), sorted_weights(quiet["weight_events"])
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=RTOL, atol=ATOL)


def test_adaptive_window_is_the_step_loop_bit_for_bit():
    """With the readouts' incoming synapses static (no closed form anywhere), the adaptive windows on
    the fast path give exactly the step path's weights: window_adapt runs the same operations."""
    case = random_case(41, models=ADAPTIVE[0], optimizer="gradient_descent", each_step=False, cutoff=20.0,
                       flush=25.0)
    step = run_core(case, fast_path=False, static_out=True)
    fast = run_core(case, fast_path=True, static_out=True)
    assert fast["kernel"]._sim.core.syn.n_fast_adaptive > 200
    assert fast["kernel"]._sim.core.syn.n_fast_events == fast["kernel"]._sim.core.syn.n_fast_adaptive
    np.testing.assert_array_equal(fast["spikes"], step["spikes"])
    a, b = sorted_weights(step["weight_events"]), sorted_weights(fast["weight_events"])
    for key in ("stamp", "sender", "target", "weight"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    for f in SIGNALS:
        np.testing.assert_array_equal(fast[f], step[f], err_msg=f)


# ---- the original family (process_entries_fast in _bsshslm_synapse.pyx) ----------------------------
def compare_bss(case, min_fast=1):
    from test_bsshslm import SIGNALS as BSS_SIGNALS
    step = run_bss_core(case, fast_path=False)
    fast = run_bss_core(case, fast_path=True)
    assert step["kernel"]._sim.core.bsshslm_syn.n_fast_windows == 0
    n_fast = fast["kernel"]._sim.core.bsshslm_syn.n_fast_windows
    assert n_fast >= min_fast, f"fast path ran for {n_fast} windows only"
    np.testing.assert_array_equal(fast["spikes"], step["spikes"])
    for f in BSS_SIGNALS:
        if f in step and f in fast:
            np.testing.assert_allclose(fast[f], step[f], rtol=RTOL, atol=ATOL, err_msg=f)
    a, b = sorted_weights(step["weight_events"]), sorted_weights(fast["weight_events"])
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=RTOL, atol=ATOL)
    return fast


@pytest.mark.parametrize("seed", range(13))
def test_bsshslm_random_networks(seed):
    """The bsshslm oracle's randomised networks (MSE/CE, both models: adaptive targets stay on the
    step path, batches 1-3, Adam and gradient descent, average_gradient, resets on and off)."""
    from test_reference_bsshslm import _random_net
    compare_bss(_random_net(seed), min_fast=10)


def test_bsshslm_classification():
    case = nc.bsshslm_classification_case(1)
    compare_bss(nc.bsshslm_run_kwargs(case), min_fast=1000)


def test_bsshslm_regression_fast_path_is_the_default():
    """NEST's regression numbers (SPEC 6.2.1) with the default kernel, i.e. on the fast path."""
    case = nc.bsshslm_regression_case()
    got = run_bss_core(nc.bsshslm_run_kwargs(case), record_rec=False)
    assert got["kernel"]._sim.core.bsshslm_syn.n_fast_windows > 10000
    loss = nc.bsshslm_regression_loss(got["readout_signal"], got["target_signal"], case)
    np.testing.assert_allclose(loss, nc.load_references()["bsshslm_2020_regression"]["loss_nest"], rtol=1e-8)


@pytest.mark.parametrize("seed,cutoff,opt", [(1, 12.0, "gradient_descent"), (2, 30.0, "adam"), (3, 2.0, "gradient_descent")])
def test_fast_only_targets_with_settling(seed, cutoff, opt):
    """Recurrent neurons not recorded: their histories are fast-only (no middle erasure) and finished
    windows are settled by internal flushes (eprop_settle_windows, the default); against the step path."""
    case = random_case(seed, optimizer=opt, each_step=False, cutoff=cutoff, flush=25.0 if seed % 2 else np.inf)
    step = run_core(case, fast_path=False, record_rec=False)
    fast = run_core(case, fast_path=True, record_rec=False)
    core = fast["kernel"]._sim.core
    assert core.syn.n_settled > 20 and core.syn.n_fast_events > 500
    assert np.asarray(core.history.fast_only)[:core.n_rec].sum() >= 3
    np.testing.assert_array_equal(fast["spikes"], step["spikes"])
    for f in ("V_m_out", "readout_signal", "error_signal"):
        np.testing.assert_allclose(fast[f], step[f], rtol=RTOL, atol=ATOL, err_msg=f)
    a, b = sorted_weights(step["weight_events"]), sorted_weights(fast["weight_events"])
    for key in ("stamp", "sender", "target"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=RTOL, atol=ATOL)
