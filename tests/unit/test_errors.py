"""Every error path raises a clear error whose message names the model and the bad field."""
import numpy as np
import pytest

import eprop_dist
from eprop_dist import BadProperty, EpropError, IllegalConnection, UnknownModel, UnknownParameter


@pytest.fixture
def k():
    return eprop_dist.Kernel()


def test_unknown_model(k):
    with pytest.raises(UnknownModel, match="eprop_iaf_typo"):
        k.Create("eprop_iaf_typo", 3)


def test_unknown_parameter(k):
    with pytest.raises(UnknownParameter, match=r"eprop_iaf: unknown parameter 'tau_mem'"):
        k.Create("eprop_iaf", 2, {"tau_mem": 10.0})
    with pytest.raises(UnknownParameter, match=r"eprop_iaf: unknown parameter 'adapt_beta'"):
        k.Create("eprop_iaf", 2, {"adapt_beta": 1.0})


@pytest.mark.parametrize("model,key,value,text", [
    ("eprop_iaf", "tau_m", -1.0, "tau_m"),
    ("eprop_iaf", "C_m", 0.0, "C_m"),
    ("eprop_iaf_adapt", "adapt_tau", 0.0, "adapt_tau"),
    ("eprop_iaf", "kappa", 1.5, "kappa"),
    ("eprop_iaf", "surrogate_gradient_function", "unsupported_surrogate_gradient", "surrogate_gradient_function"),
    ("eprop_iaf", "surrogate_gradient_width", 0.0, "surrogate_gradient_width"),
    ("eprop_iaf", "eprop_isi_trace_cutoff", -1.0, "eprop_isi_trace_cutoff"),
    ("eprop_iaf", "flush_event_send_interval", 0.0, "flush_event_send_interval"),
    ("eprop_iaf", "t_ref", 0.5, "t_ref"),
    ("eprop_readout", "tau_m", np.nan, "tau_m"),
    ("multimeter", "interval", 0.0, "interval"),
])
def test_bad_values(k, model, key, value, text):
    with pytest.raises(BadProperty, match=text) as e:
        k.Create(model, 1, {key: value})
    assert model in str(e.value)


def test_unsupported_surrogate_set_defaults(k):
    for m in ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt"):
        with pytest.raises(BadProperty, match="surrogate_gradient_function"):
            k.SetDefaults(m, {"surrogate_gradient_function": "unsupported_surrogate_gradient"})


def test_threshold_relations(k):
    with pytest.raises(BadProperty, match="V_reset must be < V_th"):
        k.Create("eprop_iaf_psc_delta", 1, {"V_reset": -50.0, "V_th": -55.0})
    with pytest.raises(BadProperty, match="V_th must be >= V_min"):
        k.Create("eprop_iaf", 1, {"V_min": -50.0, "V_th": -55.0})


def test_weight_shape(k):
    a = k.Create("parrot_neuron", 3)
    b = k.Create("eprop_iaf", 2)
    with pytest.raises(IllegalConnection, match=r"weight has shape \(3, 2\), expected \(2, 3\)"):
        k.Connect(a, b, "all_to_all", {"synapse_model": "eprop_synapse", "weight": np.ones((3, 2))})
    with pytest.raises(IllegalConnection, match="same size"):
        k.Connect(a, b, "one_to_one")


@pytest.mark.parametrize("delay,text", [(0.0, "at least one step"), (1.5, "multiple of the resolution"),
                                        (-1.0, "at least one step")])
def test_bad_delay(k, delay, text):
    a = k.Create("parrot_neuron", 2)
    b = k.Create("eprop_iaf", 2)
    with pytest.raises(BadProperty, match=text):
        k.Connect(a, b, "all_to_all", {"synapse_model": "eprop_synapse", "delay": delay})


@pytest.mark.parametrize("opt,text", [
    ({"type": "sgd"}, "optimizer type 'sgd' unknown"),
    ({"batch_size": 0}, "batch_size"),
    ({"eta": -1.0}, "eta"),
    ({"beta_1": 1.0}, "beta_1"),
    ({"beta_2": -0.1}, "beta_2"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"Wmin": 1.0, "Wmax": 0.0}, "Wmin"),
    ({"optimize_each_step": "yes"}, "optimize_each_step"),
    ({"learning_rate": 0.1}, "unknown optimizer parameter 'learning_rate'"),
])
def test_bad_optimizer(k, opt, text):
    with pytest.raises(EpropError, match=text) as e:
        k.SetDefaults("eprop_synapse", {"optimizer": opt})
    assert "eprop_synapse" in str(e.value)


def test_optimizer_type_fixed_after_build(k):
    a = k.Create("parrot_neuron", 1)
    b = k.Create("eprop_iaf", 1)
    k.Connect(a, b, syn_spec={"synapse_model": "eprop_synapse"})
    k.Simulate(2.0)
    with pytest.raises(BadProperty, match="optimizer type can only be changed while no synapse"):
        k.SetDefaults("eprop_synapse", {"optimizer": {"type": "adam"}})


def test_weight_outside_bounds_in_set_defaults(k):
    with pytest.raises(BadProperty, match=r"weight 200.0 outside \[Wmin, Wmax\]"):
        k.SetDefaults("eprop_synapse", {"weight": 200.0})


@pytest.mark.parametrize("pre,post,syn,text", [
    ("eprop_iaf", "parrot_neuron", "eprop_synapse", "target model"),
    ("spike_generator", "eprop_iaf", "eprop_synapse", "source must be a spiking neuron"),
    ("eprop_iaf", "eprop_readout", "eprop_learning_signal_connection", "connects eprop_readout"),
    ("step_rate_generator", "eprop_iaf", "rate_connection_delayed", "connects step_rate_generator"),
])
def test_illegal_connections(k, pre, post, syn, text):
    a = k.Create(pre, 1)
    b = k.Create(post, 1)
    with pytest.raises(IllegalConnection, match=text):
        k.Connect(a, b, syn_spec={"synapse_model": syn})


def test_rate_receptor(k):
    g = k.Create("step_rate_generator")
    r = k.Create("eprop_readout")
    with pytest.raises(IllegalConnection, match="receptor_type 0 is illegal"):
        k.Connect(g, r, syn_spec={"synapse_model": "rate_connection_delayed", "receptor_type": 0})


def test_unknown_synapse_and_rule(k):
    a = k.Create("parrot_neuron", 2)
    with pytest.raises(UnknownModel, match="eprop_synapse_lbl"):
        k.Connect(a, a, syn_spec={"synapse_model": "eprop_synapse_lbl"})
    with pytest.raises(BadProperty, match="unknown rule 'fixed_total'"):
        k.Connect(a, a, {"rule": "fixed_total"})
    with pytest.raises(BadProperty, match="indegree"):
        k.Connect(a, a, {"rule": "fixed_indegree", "indegree": -1})
    with pytest.raises(BadProperty, match="p must be in"):
        k.Connect(a, a, {"rule": "pairwise_bernoulli", "p": 1.5})
    with pytest.raises(UnknownParameter, match="unknown connection parameter 'tau'"):
        k.Connect(a, a, syn_spec={"tau": 1.0})


def test_simulate_and_build_errors(k):
    a = k.Create("parrot_neuron", 2)
    with pytest.raises(BadProperty, match="Simulate: time"):
        k.Simulate(2.5)
    k.Simulate(2.0)
    with pytest.raises(EpropError, match="Connect after the network was built"):
        k.Connect(a, a)
    with pytest.raises(EpropError, match="Create after the network was built"):
        k.Create("parrot_neuron")
    with pytest.raises(BadProperty, match="resolution"):
        k.set(resolution=0.5)


def test_kernel_errors(k):
    with pytest.raises(UnknownParameter, match="unknown parameter 'resolutoin'"):
        k.set(resolutoin=0.1)
    with pytest.raises(BadProperty, match="resolution"):
        k.set(resolution=-1.0)
    with pytest.raises(BadProperty, match="comm_window"):
        k.set(comm_window=0)


def test_comm_window_larger_than_min_delay(k):
    a = k.Create("parrot_neuron", 2)
    k.Connect(a, a, syn_spec={"delay": 2.0})
    k.set(comm_window=3)
    with pytest.raises(BadProperty, match="exceeds the minimum delay"):
        k.Simulate(3.0)


def test_simulate_not_multiple_of_window(k):
    """Issue 9: any multiple of the resolution is simulated, also after the first Simulate: the window
    D stays the minimum delay and the last window of a Simulate is shortened (test_partial_window.py)."""
    a = k.Create("parrot_neuron", 2)
    k.Connect(a, a, syn_spec={"delay": 3.0})
    k.Simulate(6.0)
    k.Simulate(4.0)
    assert k._sim.D == 3 and k._sim.core.last_len == 1 and k.GetKernelStatus("biological_time") == 10.0


def test_generator_errors(k):
    with pytest.raises(BadProperty, match="spike_times must be sorted"):
        k.Create("spike_generator", 1, {"spike_times": [3.0, 1.0]})
    with pytest.raises(BadProperty, match="spike time"):
        k.Create("spike_generator", 1, {"spike_times": [1.5]})
    with pytest.raises(BadProperty, match="same length"):
        k.Create("step_rate_generator", 1, {"amplitude_times": [1.0, 2.0], "amplitude_values": [1.0]})
    with pytest.raises(BadProperty, match="strictly increasing"):
        k.Create("step_rate_generator", 1, {"amplitude_times": [2.0, 2.0], "amplitude_values": [1.0, 2.0]})


def test_recorder_errors(k):
    with pytest.raises(BadProperty, match="cannot record 'voltage'"):
        k.Create("multimeter", 1, {"record_from": ["voltage"]})
    mm = k.Create("multimeter", 1, {"record_from": ["adaptation"]})
    n = k.Create("eprop_iaf", 1)
    k.Connect(mm, n)
    with pytest.raises(BadProperty, match="eprop_iaf has no recordable 'adaptation'"):
        k.Simulate(1.0)


def test_two_targets_on_one_receptor(k):
    g = k.Create("step_rate_generator", 2)
    r = k.Create("eprop_readout")
    k.Connect(g, r, syn_spec={"synapse_model": "rate_connection_delayed", "receptor_type": 2})
    with pytest.raises(IllegalConnection, match="more than one step_rate_generator"):
        k.Simulate(1.0)


def test_nonuniform_learning_signal_delay(k):
    rec = k.Create("eprop_iaf", 2)
    out = k.Create("eprop_readout", 1)
    k.Connect(out, rec[0], syn_spec={"synapse_model": "eprop_learning_signal_connection", "delay": 1.0})
    k.Connect(out, rec[1], syn_spec={"synapse_model": "eprop_learning_signal_connection", "delay": 2.0})
    with pytest.raises(IllegalConnection, match="same delay"):
        k.Simulate(1.0)
