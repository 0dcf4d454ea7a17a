"""The *_bsshslm_2020 family (Bellec et al. 2020) through the API and the compiled core: NEST and
TensorFlow reference numbers, NEST's history cleaning, and the event-driven core against the dense
time-driven oracle (eprop_dist/reference_bsshslm.py), on the step path (the fast path against the step
path: tests/unit/test_fast_path.py)."""
import numpy as np
import pytest

import eprop_dist
import nest_cases as nc
from api_cases import run_bss_core
from eprop_dist import BadProperty, IllegalConnection
from eprop_dist import reference_bsshslm as RB
from test_core_vs_reference import sorted_events
from test_reference_bsshslm import _random_net

REFS = nc.load_references()
needs_refs = pytest.mark.nest_reference      # tests/data; a missing file fails at import
SIGNALS = ("V_m", "surrogate_gradient", "learning_signal", "readout_signal", "readout_signal_unnorm",
           "target_signal", "error_signal", "eprop_history_duration", "V_m_out")


def assert_same(ref, got, rtol=1e-10):
    np.testing.assert_array_equal(got["spikes"], ref["spikes"])
    for f in SIGNALS:
        if f in ref and f in got:
            np.testing.assert_allclose(got[f], ref[f], rtol=rtol, atol=1e-13, err_msg=f)
    a, b = sorted_events(ref["weight_events"]), sorted_events(got["weight_events"])
    for key in ("stamp", "sender", "target"):
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    np.testing.assert_allclose(b["weight"], a["weight"], rtol=rtol, atol=1e-15)


@needs_refs
def test_regression_matches_nest_and_tensorflow():
    case = nc.bsshslm_regression_case()
    got = run_bss_core(nc.bsshslm_run_kwargs(case), record_rec=False)
    loss = nc.bsshslm_regression_loss(got["readout_signal"], got["target_signal"], case)
    ref = REFS["bsshslm_2020_regression"]
    np.testing.assert_allclose(loss, ref["loss_nest"], rtol=1e-8)
    np.testing.assert_allclose(loss, ref["loss_tensorflow"], rtol=ref["rtol_vs_tensorflow"])


@needs_refs
@pytest.mark.parametrize("model", ["eprop_iaf_bsshslm_2020", "eprop_readout_bsshslm_2020"])
def test_history_cleaning_matches_nest(model):
    """SPEC 6.2.3, written as the NEST test (learning window left at its default)."""
    k = eprop_dist.Kernel()
    k.set(eprop_update_interval=20.0)
    gens = k.Create("spike_generator", 3)
    parrots = k.Create("parrot_neuron", 3)
    nrn = k.Create(model, 1)
    mm = k.Create("multimeter", 1, {"record_from": ["eprop_history_duration"], "interval": 1.0})
    gens.set([{"spike_times": np.array(t, float)} for t in [[10, 20, 50, 60], [10, 30, 50, 90], [40, 60]]])
    k.Connect(gens, parrots, "one_to_one", {"delay": 1.0})
    k.Connect(parrots, nrn, "all_to_all", {"synapse_model": "eprop_synapse_bsshslm_2020", "weight": 1.0,
                                           "delay": 1.0})
    k.Connect(mm, nrn)
    k.Simulate(110.0)
    got = mm.get("events")["eprop_history_duration"]
    np.testing.assert_allclose(got, REFS["bsshslm_2020_history_cleaning"][model], rtol=1e-8)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_classification_matches_reference(batch_size):
    """SPEC 6.2.2 (evidence accumulation, cross-entropy, Adam, average_gradient): NEST's numbers are
    withheld; the oracle is the reference (rtol 1e-10; in practice bit-identical)."""
    case = nc.bsshslm_classification_case(batch_size)
    kw = nc.bsshslm_run_kwargs(case)
    ref = RB.run_bsshslm(**kw)
    got = run_bss_core(kw, fast_path=False)       # the oracle is matched by the step path
    assert_same(ref, got)
    loss_ref = nc.bsshslm_classification_loss(ref["readout_signal"], ref["target_signal"], case)
    loss = nc.bsshslm_classification_loss(got["readout_signal"], got["target_signal"], case)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-10)
    assert np.all(np.isfinite(loss)) and np.all(loss > 0)


@pytest.mark.parametrize("seed", range(13))
def test_random_networks_match_reference(seed):
    """MSE and cross-entropy (also mixed), both recurrent models, batch sizes 1-3, average_gradient
    on and off, Adam and gradient descent, resets on and off, learning window < interval."""
    case = _random_net(seed)
    assert_same(RB.run_bsshslm(**case), run_bss_core(case, fast_path=False))


def test_random_networks_cover_the_options():
    cases = [_random_net(s) for s in range(13)]
    assert {c["optimizer"]["type"] for c in cases} == {"adam", "gradient_descent"}
    assert {c["average_gradient"] for c in cases} == {True, False}
    assert {c["optimizer"]["batch_size"] for c in cases} == {1, 2, 3}
    losses = {ls for c in cases for ls in np.atleast_1d(c["out_params"]["loss"])}
    assert losses == {"mean_squared_error", "cross_entropy"}
    models = {m for c in cases for m in c["rec_models"]}
    assert models == {"eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020"}


def test_family_and_delay_errors():
    k = eprop_dist.Kernel()
    a = k.Create("eprop_iaf", 2)
    b = k.Create("eprop_iaf_bsshslm_2020", 2)
    with pytest.raises(IllegalConnection, match="other family"):
        k.Connect(a, b, syn_spec={"synapse_model": "eprop_synapse_bsshslm_2020"})
    with pytest.raises(IllegalConnection, match="other family"):
        k.Connect(b, b, syn_spec={"synapse_model": "eprop_synapse"})
    with pytest.raises(IllegalConnection, match="delay of one simulation step"):
        k.Connect(b, b, syn_spec={"synapse_model": "eprop_synapse_bsshslm_2020", "delay": 2.0})
    with pytest.raises(BadProperty, match="tau_m_readout"):
        k.Connect(b, b, syn_spec={"synapse_model": "eprop_synapse_bsshslm_2020", "tau_m_readout": -1.0})
    g = k.Create("step_rate_generator")
    r = k.Create("eprop_readout_bsshslm_2020")
    with pytest.raises(IllegalConnection, match="use 2"):
        k.Connect(g, r, syn_spec={"synapse_model": "rate_connection_delayed", "receptor_type": 1})
    with pytest.raises(BadProperty, match="loss"):
        k.Create("eprop_readout_bsshslm_2020", 1, {"loss": "hinge"})
    with pytest.raises(BadProperty, match="eprop_update_interval"):
        k.set(eprop_update_interval=0.0)


def test_flush_interval_must_cover_update_interval():
    k = eprop_dist.Kernel()
    k.set(eprop_update_interval=100.0)
    b = k.Create("eprop_iaf_bsshslm_2020", 2, {"flush_event_send_interval": 50.0})
    k.Connect(b, b, syn_spec={"synapse_model": "eprop_synapse_bsshslm_2020"})
    with pytest.raises(BadProperty, match="flush_event_send_interval must be >= eprop_update_interval"):
        k.Simulate(10.0)
