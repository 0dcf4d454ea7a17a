"""Property-based (hypothesis): random invalid parameter values and unknown keys for every model,
synapse optimizer and kernel are rejected with an error naming the model/field, and change nothing;
random unknown config keys and invalid config values are rejected naming the key."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import eprop_dist as nest
from eprop_dist import models as M

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# (model, key, rule) for every checked float parameter of the catalogue
CHECKED = [(m, k, p.rule) for m, spec in M.BUILTIN.items() for k, p in spec.params.items()
           if p.kind == "float" and p.check is not None]
FLOATS = [(m, k) for m, spec in M.BUILTIN.items() for k, p in spec.params.items() if p.kind == "float"]


def violating(rule):
    """Values that break a parameter rule ('> 0', '>= 0', 'in [0, 1]')."""
    if rule == "> 0":
        return st.floats(max_value=0.0, allow_nan=False)
    if rule == ">= 0":
        return st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=True)
    if rule == "in [0, 1]":
        return st.one_of(st.floats(max_value=-1e-12, allow_nan=False), st.floats(min_value=1.0 + 1e-12, allow_nan=False))
    raise AssertionError(f"no strategy for rule {rule!r}")


@SETTINGS
@given(data=st.data())
def test_rule_breaking_values_are_rejected_naming_model_and_field(data):
    nest.ResetKernel()
    model, key, rule = data.draw(st.sampled_from(CHECKED))
    value = data.draw(violating(rule))
    before = nest.GetDefaults(model)
    with pytest.raises(nest.BadProperty) as e:
        nest.SetDefaults(model, {key: value})
    assert model in str(e.value) and key in str(e.value)
    assert nest.GetDefaults(model) == before


@SETTINGS
@given(data=st.data())
def test_nan_and_non_numbers_are_rejected(data):
    nest.ResetKernel()
    model, key = data.draw(st.sampled_from(FLOATS))
    value = data.draw(st.one_of(st.just(float("nan")), st.text(min_size=1, max_size=5), st.just("1"), st.just(None),
                                st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
    n = nest.Create(model, 2)
    before = n.get(key)
    with pytest.raises(nest.BadProperty) as e:
        n.set({key: value})
    assert model in str(e.value) and key in str(e.value)
    np.testing.assert_array_equal(n.get(key), before)


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@SETTINGS
@given(data=st.data())
def test_unknown_keys_are_named(data):
    nest.ResetKernel()
    model = data.draw(st.sampled_from(sorted(M.BUILTIN)))
    key = data.draw(names.filter(lambda k: k not in M.BUILTIN[model].params))
    with pytest.raises(nest.UnknownParameter) as e:
        nest.SetDefaults(model, {key: 1.0})
    assert f"'{key}'" in str(e.value) and model in str(e.value)
    kkey = data.draw(names.filter(lambda k: k not in nest.GetKernelStatus()))
    with pytest.raises(nest.UnknownParameter) as e:
        nest.set(**{kkey: 1})
    assert f"'{kkey}'" in str(e.value)
    okey = data.draw(names.filter(lambda k: k not in M.OPTIMIZER_DEFAULTS))
    with pytest.raises(nest.UnknownParameter) as e:
        nest.SetDefaults("eprop_synapse", {"optimizer": {okey: 1.0}})
    assert f"'{okey}'" in str(e.value)


OPT_BAD = {
    "eta": st.one_of(st.floats(max_value=-1e-300), st.just(math.inf), st.just(math.nan), st.text(max_size=3)),
    "batch_size": st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.just(True)),
    "beta_1": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), st.just(math.nan)),
    "beta_2": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), st.just(math.nan)),
    "epsilon": st.one_of(st.floats(max_value=-1e-300), st.just(math.inf), st.just(math.nan)),
    "Wmin": st.one_of(st.just(math.nan), st.text(max_size=3)),
    "type": st.text(max_size=8).filter(lambda t: t not in M.OPTIMIZER_TYPES),
    "optimize_each_step": st.one_of(st.integers(), st.text(max_size=3)),
}


@SETTINGS
@given(data=st.data())
def test_invalid_optimizer_values_are_rejected_and_change_nothing(data):
    nest.ResetKernel()
    syn = data.draw(st.sampled_from(["eprop_synapse", "eprop_synapse_bsshslm_2020"]))
    key = data.draw(st.sampled_from(sorted(OPT_BAD)))
    value = data.draw(OPT_BAD[key])
    before = nest.GetDefaults(syn)["optimizer"]
    with pytest.raises(nest.BadProperty) as e:
        nest.SetDefaults(syn, {"optimizer": {"eta": 0.5, key: value}})
    assert syn in str(e.value) and (key in str(e.value) or key == "type")
    assert nest.GetDefaults(syn)["optimizer"] == before


KERNEL_BAD = {
    "resolution": st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf), st.text(max_size=3)),
    "rng_seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.floats(), st.just(True)),
    "eprop_update_interval": st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf)),
    "comm_window": st.one_of(st.integers(max_value=0), st.floats()),
    "exchange": st.text(max_size=6).filter(lambda t: t not in ("allgather", "alltoall")),
    "local_num_threads": st.integers(min_value=2, max_value=256),
    "total_num_virtual_procs": st.integers(min_value=2, max_value=256),
    "print_time": st.one_of(st.integers(), st.text(max_size=3)),
    "read_scope": st.text(max_size=6).filter(lambda t: t not in ("local", "global")),
}


@SETTINGS
@given(data=st.data())
def test_invalid_kernel_values_are_rejected_naming_the_key(data):
    nest.ResetKernel()
    key = data.draw(st.sampled_from(sorted(KERNEL_BAD)))
    value = data.draw(KERNEL_BAD[key])
    before = nest.GetKernelStatus()
    with pytest.raises(nest.BadProperty) as e:
        nest.set(**{key: value})
    assert key in str(e.value)
    after = nest.GetKernelStatus()
    assert {k: v for k, v in after.items() if k != "read_scope"} == \
        {k: v for k, v in before.items() if k != "read_scope"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=names)
def test_unknown_config_keys_are_named(tmp_path, capsys, key):
    from eprop_dist.cli import main
    from eprop_dist.config import TASKS
    valid = set().union(*(set(m.model_fields) for m in TASKS.values())) | {"family"}
    assume(key not in valid and key != "task")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"{key} = 1\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert repr(key) in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.h5").exists()


def _config_bounds():
    """(task, key, 'int'|'float', lower bound, upper bound) of every numeric config key with a bound."""
    from eprop_dist.config import TASKS
    out = []
    for task, model in TASKS.items():
        for key, f in model.model_fields.items():
            ann = f.annotation
            kind = "int" if ann is int else "float" if ann is float or ann == (float | None) else None
            if kind is None:
                continue
            lo = hi = None
            for m in f.metadata:
                lo = getattr(m, "ge", getattr(m, "gt", lo)) if lo is None else lo
                hi = getattr(m, "le", getattr(m, "lt", hi)) if hi is None else hi
            if lo is not None or hi is not None:
                out.append((task, key, kind, lo, hi))
    return out


CONFIG_BOUNDS = _config_bounds()


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_invalid_config_values_are_rejected_naming_the_key(data):
    """Random values outside a key's range, non-finite floats and wrong types (a bool, a string, a list)
    for every bounded numeric config key of every task: a ConfigError naming the key, nothing built."""
    from eprop_dist import config as C
    assert len(CONFIG_BOUNDS) > 40
    task, key, kind, lo, hi = data.draw(st.sampled_from(CONFIG_BOUNDS))
    num = st.integers if kind == "int" else (lambda **kw: st.floats(allow_nan=False, **kw))
    bad = [st.booleans(), st.text(max_size=5), st.lists(st.integers(), max_size=2)]
    if kind == "float":
        bad.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    if lo is not None:
        bad.append(num(max_value=lo - 1) if kind == "int" else num(max_value=lo))
    if hi is not None:
        bad.append(num(min_value=hi + 1) if kind == "int" else num(min_value=hi).filter(lambda x: x > hi))
    value = data.draw(st.one_of(bad))
    if kind == "float" and lo is not None and isinstance(value, float) and value == lo:
        field = C.TASKS[task].model_fields[key]
        assume(any(hasattr(m, "gt") and m.gt is not None for m in field.metadata))   # '> lo': lo itself is bad
    fam = C.DEFAULT_FAMILY[task]
    if key in C.TASKS[task].EPROP_PLUS_ONLY and fam != "eprop_plus":
        fam = "eprop_plus"
    with pytest.raises(C.ConfigError) as e:
        C.resolve(task, fam, {}, {key: value})
    assert f"'{key}'" in str(e.value)
