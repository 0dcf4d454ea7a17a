"""Model catalogue: NEST model names, parameter names, units, defaults and validation.

No physics here: the equations live next to the kernels in csrc/eprop_dist/ and in
eprop_dist/reference.py.  Every check raises :class:`~eprop_dist.errors.BadProperty` (or
``UnknownModel``/``UnknownParameter``) with a message that names the model and the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadProperty, UnknownModel, UnknownParameter

INF = math.inf
DBL_MAX = np.finfo(np.float64).max

REC_MODELS = ("eprop_iaf", "eprop_iaf_adapt", "eprop_iaf_psc_delta", "eprop_iaf_psc_delta_adapt",
              "eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020")      # order = core model codes
BSS_MODELS = ("eprop_iaf_bsshslm_2020", "eprop_iaf_adapt_bsshslm_2020", "eprop_readout_bsshslm_2020")
LOSSES = ("mean_squared_error", "cross_entropy")
SURROGATES = ("piecewise_linear", "exponential", "fast_sigmoid_derivative", "arctan_derivative")
RECORDABLE_FIELDS = {  # multimeter field codes shared with csrc/eprop_dist/_recording.pxd (F_*)
    "V_m": 0, "surrogate_gradient": 1, "learning_signal": 2, "eprop_history_duration": 3,
    "adaptation": 4, "V_th_adapt": 5, "readout_signal": 6, "target_signal": 7, "error_signal": 8,
    "readout_signal_unnorm": 9,
}


def _pos(v):
    return v > 0


def _nonneg(v):
    return v >= 0


def _unit(v):
    return 0.0 <= v <= 1.0


@dataclass
class Param:
    default: object
    check: object = None          # callable(value) -> bool, for scalars
    rule: str = ""                # text for the error message
    kind: str = "float"           # float | bool | str | array | list | nodes (node ids)


@dataclass
class ModelSpec:
    name: str
    kind: str                     # rec | readout | parrot | spike_generator | step_rate_generator |
    #                               poisson_generator | multimeter | spike_recorder | weight_recorder
    params: dict
    recordables: tuple = ()
    base: str = ""                # the built-in model a CopyModel derives from

    def defaults(self):
        return {k: (list(p.default) if isinstance(p.default, (list, tuple)) else p.default)
                for k, p in self.params.items()}


def _rec_params(adapt: bool, delta: bool):
    p = {
        "C_m": Param(250.0, _pos, "> 0"),
        "E_L": Param(-70.0),
        "I_e": Param(0.0),
        "t_ref": Param(2.0, _nonneg, ">= 0"),
        "tau_m": Param(10.0, _pos, "> 0"),
        "V_min": Param(-DBL_MAX),
        "V_th": Param(-55.0),
        "V_m": Param(-70.0),
        "c_reg": Param(0.0, _nonneg, ">= 0"),
        "f_target": Param(10.0, _nonneg, ">= 0"),
        "kappa": Param(0.97, _unit, "in [0, 1]"),
        "kappa_reg": Param(0.97, _unit, "in [0, 1]"),
        "surrogate_gradient_function": Param("piecewise_linear", lambda v: v in SURROGATES,
                                             "one of " + ", ".join(SURROGATES), "str"),
        "surrogate_gradient_height": Param(0.3, _pos, "> 0"),
        "surrogate_gradient_width": Param(1.0, _pos, "> 0"),
        "eprop_isi_trace_cutoff": Param(INF, _nonneg, ">= 0"),
        "flush_event_send_interval": Param(INF, _pos, "> 0"),
        "ignore_and_spike": Param(False, None, "", "bool"),
        "ignore_and_spike_offset": Param(1.0, _pos, "> 0"),
        "ignore_and_spike_interval": Param(100.0, _pos, "> 0"),
    }
    if delta:
        p["V_reset"] = Param(-70.0)
        p["refractory_input"] = Param(False, None, "", "bool")
    if adapt:
        p["adapt_beta"] = Param(1.0, _nonneg, ">= 0")
        p["adapt_tau"] = Param(10.0, _pos, "> 0")
        p["adaptation"] = Param(0.0)
    return p


_REC_RECORDABLES = ("V_m", "surrogate_gradient", "learning_signal", "eprop_history_duration")


def _bss_rec_params(adapt: bool):
    """Like eprop_iaf(_adapt) without kappa, kappa_reg, cutoff and ignore-and-spike, plus
    regular_spike_arrival (SPEC 5.2)."""
    p = _rec_params(adapt, False)
    for k in ("kappa", "kappa_reg", "eprop_isi_trace_cutoff", "ignore_and_spike", "ignore_and_spike_offset",
              "ignore_and_spike_interval"):
        del p[k]
    p["regular_spike_arrival"] = Param(True, None, "", "bool")
    return p


BUILTIN = {}
for _name in REC_MODELS[:4]:
    _adapt = _name.endswith("adapt")
    _delta = "psc_delta" in _name
    BUILTIN[_name] = ModelSpec(_name, "rec", _rec_params(_adapt, _delta),
                               _REC_RECORDABLES + (("adaptation", "V_th_adapt") if _adapt else ()))
for _name, _adapt in (("eprop_iaf_bsshslm_2020", False), ("eprop_iaf_adapt_bsshslm_2020", True)):
    BUILTIN[_name] = ModelSpec(_name, "rec", _bss_rec_params(_adapt),
                               _REC_RECORDABLES + (("adaptation", "V_th_adapt") if _adapt else ()))
BUILTIN["eprop_readout_bsshslm_2020"] = ModelSpec("eprop_readout_bsshslm_2020", "readout", {
    "C_m": Param(250.0, _pos, "> 0"),
    "E_L": Param(0.0),
    "I_e": Param(0.0),
    "tau_m": Param(10.0, _pos, "> 0"),
    "V_min": Param(-DBL_MAX),
    "V_m": Param(0.0),
    "loss": Param("mean_squared_error", lambda v: v in LOSSES, "one of " + ", ".join(LOSSES), "str"),
    "regular_spike_arrival": Param(True, None, "", "bool"),
}, ("V_m", "readout_signal", "readout_signal_unnorm", "target_signal", "error_signal", "eprop_history_duration"))
BUILTIN["eprop_readout"] = ModelSpec("eprop_readout", "readout", {
    "C_m": Param(250.0, _pos, "> 0"),
    "E_L": Param(0.0),
    "I_e": Param(0.0),
    "tau_m": Param(10.0, _pos, "> 0"),
    "V_min": Param(-DBL_MAX),
    "V_m": Param(0.0),
    "eprop_isi_trace_cutoff": Param(INF, _nonneg, ">= 0"),
}, ("V_m", "readout_signal", "target_signal", "error_signal", "eprop_history_duration"))
BUILTIN["parrot_neuron"] = ModelSpec("parrot_neuron", "parrot", {
    "flush_event_send_interval": Param(INF, _pos, "> 0"),
})
BUILTIN["spike_generator"] = ModelSpec("spike_generator", "spike_generator", {
    "spike_times": Param((), None, "", "array"),
})
BUILTIN["step_rate_generator"] = ModelSpec("step_rate_generator", "step_rate_generator", {
    "amplitude_times": Param((), None, "", "array"),
    "amplitude_values": Param((), None, "", "array"),
})
BUILTIN["poisson_generator"] = ModelSpec("poisson_generator", "poisson_generator", {
    "rate": Param(0.0, _nonneg, ">= 0"),
    "start": Param(0.0, _nonneg, ">= 0"),
    "stop": Param(INF, _nonneg, ">= 0"),
})
BUILTIN["multimeter"] = ModelSpec("multimeter", "multimeter", {
    "record_from": Param((), None, "", "list"),
    "interval": Param(1.0, _pos, "> 0"),
    "start": Param(0.0, _nonneg, ">= 0"),
    "stop": Param(INF, _nonneg, ">= 0"),
})
BUILTIN["spike_recorder"] = ModelSpec("spike_recorder", "spike_recorder", {
    "start": Param(0.0, _nonneg, ">= 0"),
    "stop": Param(INF, _nonneg, ">= 0"),
})
BUILTIN["weight_recorder"] = ModelSpec("weight_recorder", "weight_recorder", {
    "senders": Param((), None, "", "nodes"),      # record only synapses from these (empty: all)
    "targets": Param((), None, "", "nodes"),      # record only synapses onto these (empty: all)
    "start": Param(0.0, _nonneg, ">= 0"),
    "stop": Param(INF, _nonneg, ">= 0"),
})

NEURON_KINDS = ("rec", "readout", "parrot")
DEVICE_KINDS = ("spike_generator", "step_rate_generator", "poisson_generator",
                "multimeter", "spike_recorder", "weight_recorder")

# ---- synapse models ---------------------------------------------------------------------------
OPTIMIZER_DEFAULTS = {
    "type": "gradient_descent", "batch_size": 1, "eta": 1e-4, "optimize_each_step": True,
    "Wmin": -100.0, "Wmax": 100.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
}
OPTIMIZER_TYPES = ("gradient_descent", "adam")


@dataclass
class SynapseSpec:
    name: str
    kind: str            # static | eprop | learning_signal | rate
    defaults: dict = field(default_factory=dict)
    base: str = ""


SYNAPSES = {
    "static_synapse": SynapseSpec("static_synapse", "static", {"weight": 1.0, "delay": 1.0}),
    "eprop_synapse": SynapseSpec("eprop_synapse", "eprop", {"weight": 1.0, "delay": 1.0}),
    "eprop_learning_signal_connection": SynapseSpec("eprop_learning_signal_connection", "learning_signal",
                                                    {"weight": 1.0, "delay": 1.0}),
    "rate_connection_delayed": SynapseSpec("rate_connection_delayed", "rate",
                                           {"weight": 1.0, "delay": 1.0, "receptor_type": 0}),
    "eprop_synapse_bsshslm_2020": SynapseSpec("eprop_synapse_bsshslm_2020", "eprop",
                                              {"weight": 1.0, "delay": 1.0, "tau_m_readout": 10.0}),
    "eprop_learning_signal_connection_bsshslm_2020": SynapseSpec(
        "eprop_learning_signal_connection_bsshslm_2020", "learning_signal", {"weight": 1.0, "delay": 1.0}),
}
BSS_SYNAPSES = ("eprop_synapse_bsshslm_2020", "eprop_learning_signal_connection_bsshslm_2020")
KERNEL_BSS = {"eprop_update_interval": 1000.0, "eprop_learning_window": 1000.0,
              "eprop_reset_neurons_on_update": True}


def check_value(model: str, spec: ModelSpec, key: str, value):
    """Validate one (scalar or array) parameter value; return it normalised."""
    if key not in spec.params:
        raise UnknownParameter(f"{model}: unknown parameter '{key}'; valid parameters: "
                               f"{', '.join(sorted(spec.params))}")
    p = spec.params[key]
    if p.kind == "str":
        vals = [value] if isinstance(value, str) else list(value)
        for v in vals:
            if not isinstance(v, str) or not p.check(v):
                raise BadProperty(f"{model}: {key} = {v!r} is invalid; must be {p.rule}")
        return value
    if p.kind == "bool":
        arr = np.asarray(value)
        if arr.dtype.kind not in "bi":
            raise BadProperty(f"{model}: {key} must be a boolean, got {value!r}")
        return value
    if p.kind == "array":
        arr = np.asarray(value, dtype=np.float64).ravel()
        if not np.all(np.isfinite(arr)):
            raise BadProperty(f"{model}: {key} must contain finite numbers")
        return arr
    if p.kind == "nodes":
        gids = getattr(value, "gids", value)        # a NodeCollection or node ids
        arr = np.asarray(gids)
        if arr.size and arr.dtype.kind not in "iu":
            raise BadProperty(f"{model}: {key} must be a NodeCollection or node ids, got {value!r}")
        arr = np.unique(arr.astype(np.int64).ravel())
        if arr.size and arr[0] < 1:
            raise BadProperty(f"{model}: {key} contains node ids < 1")
        return arr
    if p.kind == "list":
        if isinstance(value, str):
            value = [value]
        return list(value)
    try:
        if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind in "USO" and \
                any(isinstance(x, (str, bytes)) for x in np.ravel(np.asarray(value, dtype=object))):
            raise TypeError
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadProperty(f"{model}: {key} must be a number, got {value!r}") from None
    if np.any(np.isnan(arr)):
        raise BadProperty(f"{model}: {key} must not be NaN")
    if p.check is not None and not np.all(p.check(arr)):
        raise BadProperty(f"{model}: {key} = {value!r} is invalid; must be {p.rule}")
    return value


def get_model(models: dict, name: str) -> ModelSpec:
    if not isinstance(name, str) or name not in models:
        raise UnknownModel(f"unknown node model '{name}'; available: {', '.join(sorted(models))}")
    return models[name]


def model_is_bss(catalogue, name):
    """True for models of the bsshslm_2020 family (also CopyModel copies of them).

    `catalogue` is anything with ``models`` and ``synapses`` dicts of specs (a Kernel)."""
    spec = catalogue.models.get(name) or catalogue.synapses.get(name)
    base = (spec.base or name) if spec is not None else name
    return base in BSS_MODELS or base in BSS_SYNAPSES
