"""benchmarks/vs_nest.py and benchmarks/scale_test_net.py without NEST: the example patching, the
PyNEST shim (a script in NEST's forms computes under eprop_dist exactly what the eprop_dist forms
compute), per-child time and peak-memory measurement, the clear error without NEST, and the
eprop-dist sides of W4 (2 ranks == 1 rank) and W5."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


vs = _load("vs_nest")
ENV = vs.child_env()


# ---- patching -----------------------------------------------------------------------------------
def test_patch_constants_replaces_the_value_and_keeps_the_comment():
    src = "a = 1\nn_iter = 200  # number of iterations\nx = n_iter\ndo_plotting = True  # plot\n"
    out = vs.patch_constants(src, {"n_iter": 7, "do_plotting": False})
    assert out == "a = 1\nn_iter = 7  # number of iterations\nx = n_iter\ndo_plotting = False  # plot\n"
    g = {}
    exec(out, g)
    assert g["x"] == 7 and g["do_plotting"] is False


@pytest.mark.parametrize("src,count", [("m = 1\n", 0), ("n_iter = 1\nn_iter = 2\n", 2), ("  n_iter = 3\n", 0)])
def test_patch_constants_names_a_constant_it_cannot_find_once(src, count):
    with pytest.raises(vs.BenchError, match=rf"'n_iter'.*found {count} top-level"):
        vs.patch_constants(src, {"n_iter": 5})


# ---- options and missing NEST ---------------------------------------------------------------------
def test_without_nest_the_error_says_how_to_install_it(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(vs.importlib.util, "find_spec", lambda name, *a: None if name == "nest" else real(name, *a))
    assert vs.main(["--only", "W1", "--n-iter", "2"]) == 2
    err = capsys.readouterr().err
    assert "NEST is not installed" in err and "pip install '.[nest]'" in err
    assert vs.main(["--only", "W4", "--w4-sizes", "200"]) == 2
    assert "pip install '.[nest]'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,field", [(["--only", "W9"], "--only"), (["--n-iter", "0"], "--n-iter"),
                                        (["--only", "W5"], "--w5"), (["--w4-sizes", "50"], "--w4-sizes"),
                                        (["--out", "/nonexistent/dir/x.json"], "--out")])
def test_bad_options_are_rejected_naming_the_option(argv, field, capsys):
    with pytest.raises(SystemExit) as e:
        vs.parse_args(argv)
    assert e.value.code == 2 and field in capsys.readouterr().err


# ---- the shim: NEST forms under eprop_dist ----------------------------------------------------
NET = """
import numpy as np
import nest
{verbosity}
nest.ResetKernel()
nest.set(resolution=1.0, rng_seed=3)
gen = nest.Create("spike_generator", 5)
par = nest.Create("parrot_neuron", 5)
rec = nest.Create("eprop_iaf_adapt", 8, {{"C_m": 1.0, "E_L": 0.0, "V_th": 0.03, "tau_m": 20.0, "c_reg": 0.1}})
out = nest.Create("eprop_readout", 1, {{"C_m": 1.0, "E_L": 0.0, "tau_m": 20.0}})
tgt = nest.Create("step_rate_generator")
lw = nest.Create("step_rate_generator")
mm = nest.Create("multimeter", {mm_params})
wr = nest.Create("weight_recorder", {wr_params})
nest.SetDefaults("eprop_synapse", {{"optimizer": {{"type": "adam", "eta": 1e-3, "optimize_each_step": False}},
                                   "weight_recorder": wr}})
rng = np.random.default_rng(0)
nest.Connect(gen, par, "one_to_one")
nest.Connect(par, rec, "all_to_all", {{"synapse_model": "eprop_synapse", "weight": rng.normal(0, 0.3, (8, 5))}})
nest.Connect(rec, rec, {{"rule": "all_to_all", "allow_autapses": False}},
             {{"synapse_model": "eprop_synapse", "weight": rng.normal(0, 0.1, (8, 8)) * (1 - np.eye(8))}})
nest.Connect(rec, out, "all_to_all", {{"synapse_model": "eprop_synapse", "weight": rng.normal(0, 0.1, (1, 8))}})
nest.Connect(out, rec, "all_to_all", {{"synapse_model": "eprop_learning_signal_connection",
                                      "weight": rng.normal(0, 0.1, (8, 1))}})
nest.Connect(tgt, out, syn_spec={{"synapse_model": "rate_connection_delayed", "receptor_type": 2}})
nest.Connect(lw, out, syn_spec={{"synapse_model": "rate_connection_delayed", "receptor_type": 1}})
nest.Connect(mm, out)
{early_set}
final = nest.Create("spike_generator", 1, {{"spike_times": [400.0]}})
nest.Connect(final, par + rec, "all_to_all", {{"weight": 1000.0}})
gen.set([{{"spike_times": np.unique(rng.integers(1, 390, 40)).astype(float)}} for _ in range(5)])
t = np.arange(1.0, 400.0)
tgt.set({{"amplitude_times": t, "amplitude_values": np.sin(t / 30.0)}})
lw.set({{"amplitude_times": [1.0], "amplitude_values": [1.0]}})
nest.Simulate(200.0)
nest.Simulate(205.0)
ev = mm.get("events")
err = np.asarray(ev["readout_signal"]) - np.asarray(ev["target_signal"])
loss = [0.5 * float(np.sum(e ** 2)) for e in np.array_split(err, 4)]
w_out = [float(x) for x in nest.GetConnections(rec, out).get("weight")]
"""

NEST_FORMS = dict(
    verbosity="nest.verbosity = nest.VerbosityLevel.FATAL",
    mm_params='{"record_from": ["readout_signal", "target_signal"], "interval": 1.0, "label": "mm_out"}',
    wr_params='{"senders": rec[:2], "targets": out, "start": 0.0, "stop": 100.0, "label": "wr"}',
    early_set='nest.GetConnections(rec[0], rec[1:3]).set([{"optimizer": {"m": 0.0, "v": 0.0}}] * 2)')
EPROP_FORMS = dict(verbosity="", mm_params='1, {"record_from": ["readout_signal", "target_signal"], "interval": 1.0}',
                   wr_params="", early_set="")


def _run_script(tmp_path, text, shim):
    path = tmp_path / ("nest_forms.py" if shim else "eprop_forms.py")
    path.write_text(text)
    if shim:
        cmd = [sys.executable, os.path.join(BENCH, "vs_nest.py"), "--child-example", "eprop", str(path), "W1"]
    else:
        runner = ("import sys, json, eprop_dist; sys.modules['nest'] = eprop_dist; g = {'__name__': '__main__'}; "
                  f"exec(open({str(path)!r}).read(), g); print('R ' + json.dumps({{'loss': g['loss'], "
                  "'w_out': g['w_out']}))")
        cmd = [sys.executable, "-c", runner]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    tag = vs.RESULT_TAG if shim else "R "
    return [json.loads(ln[len(tag):]) for ln in p.stdout.splitlines() if ln.startswith(tag)][-1]


def test_shim_runs_the_nest_forms_and_computes_what_eprop_dist_computes(tmp_path):
    with_shim = _run_script(tmp_path, NET.format(**NEST_FORMS), shim=True)
    plain = _run_script(tmp_path, NET.format(**EPROP_FORMS), shim=False)
    assert len(plain["loss"]) == 4 and plain["loss"][0] > 0
    assert with_shim["loss"] == plain["loss"]               # same network, same numbers, bit for bit
    # every workaround the shim applied is one of the known PyNEST gaps (eprop-dist closes them one by
    # one: a gap that no longer exists is simply not used any more)
    known = ("nest.VerbosityLevel", "parameters as 2nd positional argument", "parameter 'label'",
             "'senders'", "weight recorder is detached", "before the last Create", "one dict per connection")
    for gap in with_shim["gaps"]:
        assert any(k in gap for k in known), gap
    # eprop_dist takes Create(model, params) itself (issue 9): a gap reported only because of another
    # parameter of the same call would be a false report
    assert not any("2nd positional" in g for g in with_shim["gaps"]), with_shim["gaps"]
    assert with_shim["peak_rss_MiB"] > 10


# ---- measuring a child ----------------------------------------------------------------------------
def test_run_child_measures_each_childs_own_peak_memory_and_wall_time():
    # Linux gives a child the RSS high-water mark of the process it was forked (or vforked) from,
    # so the measuring process must be small, as the vs_nest driver is (standard library only); a
    # pytest process may hold GBs, so the measurement runs in a fresh small driver process
    prog = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {BENCH!r})
        import vs_nest as vs
        big = vs.run_child([sys.executable, "-c", "import time; b = bytearray(160 * 2**20); "
                            "b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"], timeout=60)
        small = vs.run_child([sys.executable, "-c", "pass"], timeout=60)
        busy = vs.run_child([sys.executable, "-c", "import time; t = time.process_time(); "
                             "all(iter(lambda: time.process_time() - t < 0.5, False))"], timeout=60)
        print(json.dumps([{{k: r[k] for k in ("rc", "wall_s", "peak_rss_MiB", "cpu_s")}} for r in (big, small, busy)]))
    """)
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    big, small, busy = json.loads(p.stdout.splitlines()[-1])
    assert big["rc"] == 0 and small["rc"] == 0 and busy["rc"] == 0
    assert big["peak_rss_MiB"] > 160 > 3 * small["peak_rss_MiB"]   # the small one after the big one: no running max
    assert big["wall_s"] >= 0.3
    # CPU seconds (user + system) of the child itself: the sleeping one used little, the busy one >= 0.5 s
    assert busy["cpu_s"] >= 0.5 > big["cpu_s"] - 0.2 and busy["cpu_s"] > small["cpu_s"]


def test_run_child_kills_a_child_past_its_timeout():
    r = vs.run_child([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert r["timed_out"] and r["rc"] != 0 and r["wall_s"] < 10
    assert "timed out" in vs.child_failed(r, "x")


# ---- W4 and W5, eprop-dist side ------------------------------------------------------------------
def _scale(args, ranks=1):
    cmd = [sys.executable, os.path.join(BENCH, "scale_test_net.py"), "--simulator", "eprop"] + args
    if ranks > 1:
        cmd = vs.mpiexec_cmd() + ["-n", str(ranks), sys.executable, "-m", "mpi4py"] + cmd[1:]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-3000:]
    return vs.tagged(p.stdout, "SCALE_RESULT ")


def test_scale_test_net_same_spikes_on_1_and_2_ranks_and_static_variant_is_the_same_network():
    args = ["--n-rec", "300", "--t-sim", "60"]
    one, two = _scale(args), _scale(args, ranks=2)
    assert len(one) == 1 and len(two) == 2 and {r["rank"] for r in two} == {0, 1}
    assert one[0]["n_spikes"] > 0 and 5.0 < one[0]["rate_hz"] < 100.0
    assert one[0]["spikes_sha256"] == two[0]["spikes_sha256"] == two[1]["spikes_sha256"]
    static = _scale(args + ["--synapse", "static"])
    # the static variant only swaps the synapse model: same connections and weights, and with
    # eta = 1e-4 * 0.03^2 the e-prop weights move far too little in 60 ms to change a spike
    assert static[0]["synapse"] == "static" and static[0]["spikes_sha256"] == one[0]["spikes_sha256"]


def test_scale_test_net_rejects_a_network_too_small_for_its_in_degree():
    p = subprocess.run([sys.executable, os.path.join(BENCH, "scale_test_net.py"), "--simulator", "eprop",
                        "--n-rec", "50"], capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 2 and "--n-rec" in p.stderr


def test_w5_plumbing_on_a_small_network(tmp_path):
    out = tmp_path / "w5.json"
    rc = vs.main(["--w5", "--only", "W5", "--w5-n", "1000", "--w5-t-sim", "10", "--out", str(out)])
    rep = json.loads(out.read_text())
    assert rc == 0 and rep["ok"], rep["workloads"]["W5"]["errors"]
    x = rep["workloads"]["W5"]
    assert x["result"]["ranks"] == 2 and x["result"]["N"] == 1000
    assert x["result"]["synapses"] == 1000 * 110 + 10 * 100      # in-degree 100, 10 readouts, feedback
    assert x["summary"]["bytes_per_synapse_state"] > 8 and len(x["summary"]["peak_rss_MiB_per_rank"]) == 2
    assert "W5" in rep["table"] and rep["command"].endswith("--out " + str(out))
