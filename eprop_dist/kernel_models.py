"""Kernel mixin: model catalogue of one kernel (CopyModel, SetDefaults, GetDefaults, optimizers)."""
from __future__ import annotations

import copy
import math

import numpy as np

from . import models as M
from .errors import BadProperty, UnknownModel, UnknownParameter
from .models import model_is_bss
from .node_collections import NodeCollection


class ModelsMixin:
    # ---- models ----------------------------------------------------------------------------
    def CopyModel(self, existing, new, params=None):
        if new in self.models or new in self.synapses:
            raise BadProperty(f"CopyModel: model '{new}' already exists")
        if existing in self.models:
            spec = copy.deepcopy(self.models[existing])
            spec.name = new
            spec.base = spec.base or existing
            self.models[new] = spec
            self.model_defaults[new] = copy.deepcopy(self.model_defaults[existing])
            if params:
                self.SetDefaults(new, params)
        elif existing in self.synapses:
            spec = copy.deepcopy(self.synapses[existing])
            spec.name = new
            spec.base = spec.base or existing
            self.synapses[new] = spec
            if spec.kind == "eprop":
                self.syn_common[new] = copy.deepcopy(self.syn_common[existing])
            if params:
                self.SetDefaults(new, params)
        else:
            raise UnknownModel(f"CopyModel: unknown model '{existing}'")

    def SetDefaults(self, model, params=None, val=None):
        if isinstance(params, str):
            params = {params: val}
        params = dict(params or {})
        if model in self.synapses:
            return self._set_syn_defaults(model, params)
        spec = M.get_model(self.models, model)
        checked = {k: M.check_value(model, spec, k, v) for k, v in params.items()}   # all, before any change
        self.model_defaults[model].update(checked)

    def GetDefaults(self, model, key=None):
        if model in self.synapses:
            d = dict(self.synapses[model].defaults)
            d["synapse_model"] = model
            if model in self.syn_common:
                d["optimizer"] = dict(self.syn_common[model]["optimizer"])
            return d if key is None else d[key]
        M.get_model(self.models, model)
        d = dict(self.model_defaults[model])
        if "f_target" in d:
            d["f_target"] = d["f_target"] / 1000.0  # NEST quirk: returned in spikes/ms
        d["model"] = model
        return d if key is None else d[key]

    def _set_syn_defaults(self, model, params):
        """Synapse defaults; a bad entry leaves the model as it was."""
        spec = self.synapses[model]
        saved = (copy.deepcopy(spec.defaults), copy.deepcopy(self.syn_common.get(model)))
        try:
            self._set_syn_defaults_checked(model, spec, params)
        except Exception:
            spec.defaults = saved[0]
            if saved[1] is not None:
                self.syn_common[model] = saved[1]
            raise
        if self._sim is not None and model in self.syn_common:
            self._sim.push_optimizers()

    def _set_syn_defaults_checked(self, model, spec, params):
        for k, v in params.items():
            if k in ("weight", "delay", "tau_m_readout", "receptor_type") and not (
                    isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    and math.isfinite(v)):
                raise BadProperty(f"{model}: {k} must be a finite number, got {v!r}")
            if k == "optimizer":
                if spec.kind != "eprop":
                    raise UnknownParameter(f"{model}: unknown parameter 'optimizer'")
                self._set_optimizer(model, v)
            elif k == "weight_recorder":
                if spec.kind != "eprop":
                    raise UnknownParameter(f"{model}: 'weight_recorder' is supported on e-prop synapses")
                if not isinstance(v, NodeCollection) or len(v) != 1 or \
                        self._pop_of(v.gids)[0].kind != "weight_recorder":
                    raise BadProperty(f"{model}: weight_recorder must be one weight_recorder node")
                if self._sim is not None and self.syn_common[model]["weight_recorder"] != int(v.gids[0]):
                    # (setting the recorder it already has is no change: NEST's examples re-set the
                    # whole common-property dict in every phase)
                    raise BadProperty(f"{model}: weight_recorder must be set before the network is built")
                self.syn_common[model]["weight_recorder"] = int(v.gids[0])
            elif k == "average_gradient" and model_is_bss(self, model):
                if not isinstance(v, (bool, np.bool_)):
                    raise BadProperty(f"{model}: average_gradient must be a bool")
                self.syn_common[model]["average_gradient"] = bool(v)
            elif k in spec.defaults:
                if k == "tau_m_readout" and not (isinstance(v, (int, float)) and v > 0):
                    raise BadProperty(f"{model}: tau_m_readout must be > 0 ms, got {v!r}")
                if k == "delay":
                    self.ms_to_steps(float(v), f"{model}: delay", 1)
                if k == "weight" and spec.kind == "eprop":
                    o = self.syn_common[model]["optimizer"]
                    if not o["Wmin"] <= float(v) <= o["Wmax"]:
                        raise BadProperty(f"{model}: weight {v} outside [Wmin, Wmax] = [{o['Wmin']}, {o['Wmax']}]")
                spec.defaults[k] = v
            else:
                raise UnknownParameter(f"{model}: unknown parameter '{k}'; valid: "
                                       f"{', '.join(sorted(list(spec.defaults) + (['optimizer', 'weight_recorder'] if spec.kind == 'eprop' else [])))}")

    def _set_optimizer(self, model, opt):
        if not isinstance(opt, dict):
            raise BadProperty(f"{model}: optimizer must be a dict")
        com = self.syn_common[model]
        cur = dict(com["optimizer"])
        for k, v in opt.items():
            if k not in M.OPTIMIZER_DEFAULTS:
                raise UnknownParameter(f"{model}: unknown optimizer parameter '{k}'; valid: "
                                       f"{', '.join(sorted(M.OPTIMIZER_DEFAULTS))}")
            cur[k] = v
        t = cur["type"]
        if t not in M.OPTIMIZER_TYPES:
            raise BadProperty(f"{model}: optimizer type {t!r} unknown; must be one of {M.OPTIMIZER_TYPES}")
        if t != com["optimizer"]["type"] and self._sim is not None:
            raise BadProperty(f"{model}: optimizer type can only be changed while no synapse of the model exists")
        num = lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)  # noqa: E731
        checks = [("batch_size", lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0,
                   "an integer > 0"),
                  ("Wmin", lambda v: num(v) and not math.isnan(v), "a number"),
                  ("Wmax", lambda v: num(v) and not math.isnan(v), "a number"),
                  ("eta", lambda v: num(v) and 0 <= v < math.inf, "a finite number >= 0"),
                  ("beta_1", lambda v: num(v) and 0 <= v < 1, "in [0, 1)"),
                  ("beta_2", lambda v: num(v) and 0 <= v < 1, "in [0, 1)"),
                  ("epsilon", lambda v: num(v) and 0 <= v < math.inf, "a finite number >= 0")]
        for k, ok, rule in checks:
            try:
                good = bool(ok(cur[k]))
            except TypeError:
                good = False
            if not good:
                raise BadProperty(f"{model}: optimizer {k} = {cur[k]!r} is invalid; must be {rule}")
        if not cur["Wmin"] <= cur["Wmax"]:
            raise BadProperty(f"{model}: optimizer Wmin ({cur['Wmin']}) must be <= Wmax ({cur['Wmax']})")
        if not isinstance(cur["optimize_each_step"], (bool, np.bool_)):
            raise BadProperty(f"{model}: optimizer optimize_each_step must be a bool")
        if float(cur["eta"]) != float(com["optimizer"]["eta"]):       # SPEC 3.4: eta change count
            if com["eta_change_count"] == 0:
                com["eta_first_change"] = float(cur["eta"])
            com["eta_change_count"] += 1
        com["optimizer"] = cur              # pushed to the core by _set_syn_defaults

