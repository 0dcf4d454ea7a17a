#!/usr/bin/env python3
"""eprop-dist vs NEST 3.10.0, side by side in one invocation (issue 8: W1-W5).

Every workload runs in NEST and in eprop-dist one after the other, each in a separate child
process; the driver measures each child's whole-process wall time and peak RSS (``os.wait4``),
checks that both computed the same thing and prints a table of times, peak memory and the ratios
NEST / eprop-dist, the machine (CPU, cores, load average before and after) and the command.

* W1  NEST's e-prop+ sine-wave example (SPEC 7.1), ``eprop_supervised_regression_sine-waves.py``
* W2  the bsshslm sine-wave example (SPEC 7.2)
* W3  the bsshslm evidence-accumulation example (SPEC 7.3), whole run
      W1-W3 run the example script of the INSTALLED NEST wheel
      (``nest/doc/examples/pynest/eprop_plasticity/``) from a patched copy in a temporary folder
      (iteration counts changed when asked, plotting off), once with ``import nest`` = NEST and once
      with ``import nest`` = eprop_dist (a module shim set up by this runner; the PyNEST names
      eprop_dist lacks are filled in here and reported).  Check: per-iteration losses (and, for W3,
      errors and phase labels) equal to rtol 1e-8.
* W4  the sparse scale test (``benchmarks/scale_test_net.py``, one PyNEST-terms script run under
      both simulators) at 4000 and 10000 recurrent neurons, e-prop and static synapses, and
      eprop-dist on 2 ranks.  Check: firing rates within --rate-rtol, and 2 ranks == 1 rank.
* W5  eprop-dist only (``--w5``): ``benchmarks/scaling.py``'s worker for 10^6 recurrent neurons on
      2 ranks (about 13 GB; ``--w5-n 10000`` tests the plumbing).

Usage::

    pip install '.[nest]'
    python benchmarks/vs_nest.py [--only W1 W4] [--n-iter N] [--w3-n-iter-train N] [--w3-n-iter-test N]
           [--w3-batch-size B] [--w4-sizes 4000 10000] [--w4-ranks 2] [--w5 [--w5-n N] [--w5-t-sim MS]]
           [--out FILE.json]

The exit status is 1 when a check fails or a child fails (the table and JSON are written anyway).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NEST_HINT = "install it with: pip install '.[nest]'  (nest-simulator==3.10.0 and ipython)"
EXAMPLE_DIR = os.path.join("doc", "examples", "pynest", "eprop_plasticity")
EXAMPLES = {
    "W1": ("eprop_supervised_regression_sine-waves.py", "e-prop+ sine-wave example (SPEC 7.1)"),
    "W2": ("eprop_supervised_regression_sine-waves_bsshslm_2020.py", "bsshslm sine-wave example (SPEC 7.2)"),
    "W3": ("eprop_supervised_classification_evidence-accumulation_bsshslm_2020.py",
           "bsshslm evidence-accumulation example (SPEC 7.3)"),
}
ALL = ("W1", "W2", "W3", "W4", "W5")
RESULT_TAG = "VSNEST_RESULT "


class BenchError(Exception):
    """A problem with the benchmark's input (options, installation, a NEST script it cannot patch)."""


# =============================================================================================
# patching the example scripts (a temporary copy; NEST's code is not kept in the project)
# =============================================================================================
def patch_constants(src: str, values: dict) -> str:
    """Replace top-level assignments ``name = <literal>  # comment`` in a script's text.

    Each name must be assigned exactly once at the start of a line, else BenchError names it (the
    NEST example changed, so the benchmark would silently measure something else)."""
    for name, value in values.items():
        pat = re.compile(rf"^{re.escape(name)} = [^\n#]*?(?=[ \t]*(#|$))", re.M)
        hits = pat.findall(src)
        if len(hits) != 1:
            raise BenchError(f"cannot patch '{name}' in the NEST example: found {len(hits)} top-level "
                             f"assignments '{name} = ...', expected exactly 1")
        src = pat.sub(f"{name} = {value!r}", src, count=1)
    return src


def example_path(script: str) -> str:
    spec = importlib.util.find_spec("nest")
    if spec is None or not spec.origin:
        raise BenchError(f"NEST is not installed in this Python ({sys.executable}); {NEST_HINT}")
    path = os.path.join(os.path.dirname(spec.origin), EXAMPLE_DIR, script)
    if not os.path.isfile(path):
        raise BenchError(f"the installed NEST ({os.path.dirname(spec.origin)}) has no example {EXAMPLE_DIR}/"
                         f"{script}; NEST 3.10.0 from PyPI ships it: {NEST_HINT}")
    return path


def example_patches(w: str, a) -> dict:
    p = {"do_plotting": False}
    if w in ("W1", "W2") and a.n_iter is not None:
        p["n_iter"] = a.n_iter
    if w == "W3":
        for opt, name in (("w3_n_iter_train", "n_iter_train"), ("w3_n_iter_test", "n_iter_test"),
                          ("w3_batch_size", "batch_size")):
            if getattr(a, opt) is not None:
                p[name] = getattr(a, opt)
    return p


# =============================================================================================
# child: run one example script under NEST or under eprop_dist
# =============================================================================================
class _Dummy:
    """Stands in for matplotlib/cycler: accepts any use (the runner switches plotting off)."""

    def __call__(self, *a, **k):
        return self

    def __getattr__(self, name):
        return self

    def __iter__(self):
        return iter(())


def _stub_module(name):
    m = types.ModuleType(name)
    m.__getattr__ = lambda attr: _Dummy()          # module-level __getattr__ (PEP 562)
    m.__path__ = []
    return m


SHIM_SETTABLE = {"verbosity"}          # attributes the scripts assign (nest.verbosity = ...)


RECORDERS = ("multimeter", "spike_recorder", "weight_recorder")
# recorder parameters of NEST that eprop_dist may reject and that change no loss: 'label' is
# cosmetic; the weight recorder's subsampling (senders, targets, start, stop) only selects what the
# examples plot.  An unrestricted weight recorder would record every weight update of every synapse,
# so a weight recorder created without its restrictions is also detached from the synapse models
# (see _set_defaults): the eprop-dist run then records no weights.
DROPPABLE = {"multimeter": {"label"}, "spike_recorder": {"label"},
             "weight_recorder": {"label", "senders", "targets", "start", "stop"}}


def _create(real, shim):
    """NEST's ``Create(model, params)`` (parameters as the second positional argument) and the
    recorder parameters above; each workaround is used only after the real call failed."""
    gaps, detached = shim._gaps, shim._detached

    def Create(model, n=1, params=None, positions=None):
        n_, p_, dropped = n, params, []
        for _ in range(8):
            try:
                nodes = real.Create(model, n_, p_, positions)
                break
            except Exception as e:  # noqa: BLE001 - retried with the NEST form translated, else re-raised
                m = re.search(r"unknown parameter '(\w+)'", str(e))
                d = n_ if isinstance(n_, dict) else p_          # the parameters, in either position
                if m and isinstance(d, dict) and m.group(1) in d and m.group(1) in DROPPABLE.get(model, ()):
                    gaps.add(f"Create('{model}', ...): parameter '{m.group(1)}'")
                    dropped.append(m.group(1))
                    d = {k: v for k, v in d.items() if k != m.group(1)}
                    n_, p_ = (d, p_) if isinstance(n_, dict) else (n_, d)
                elif isinstance(n_, dict) and p_ is None:
                    gaps.add("Create(model, params) with the parameters as 2nd positional argument")
                    n_, p_ = 1, n_
                else:
                    raise
        else:
            nodes = real.Create(model, n_, p_, positions)
        if model == "weight_recorder" and set(dropped) - {"label"}:
            detached.update(int(g) for g in nodes.tolist())
        return nodes
    return Create


def _set_defaults(real, shim):
    gaps, detached = shim._gaps, shim._detached

    def SetDefaults(model, params=None, val=None):
        if isinstance(params, dict) and "weight_recorder" in params:
            wr = params["weight_recorder"]
            if wr is not None and set(int(g) for g in wr.tolist()) & detached:
                gaps.add("weight recorder subsampling: the weight recorder is detached in the eprop-dist run")
                params = {k: v for k, v in params.items() if k != "weight_recorder"}
        return real.SetDefaults(model, params, val)
    return SetDefaults


def _set_synapses(syn, params, gaps):
    """``SynapseCollection.set``, also with NEST's list of one dict per connection when all the dicts
    are equal (how the evidence-accumulation example uses it)."""
    try:
        return syn.set(params)
    except Exception:  # noqa: BLE001
        if isinstance(params, (list, tuple)) and params:
            if any(p != params[0] for p in params):
                raise BenchError("SynapseCollection.set with different dicts per connection: no workaround")
            gaps.add("SynapseCollection.set([dict, ...]) (a list with one dict per connection)")
            return syn.set(params[0])
        raise


class _SynapseCollectionShim:
    """GetConnections(...) result.  eprop_dist builds the network at GetConnections, after which
    Create fails, while NEST lets the evidence-accumulation example set optimizer state of two
    connections before creating more nodes: a ``set`` before the build is kept and applied by the
    first Simulate (nothing can read the synapses in between); ``get`` resolves at once."""

    def __init__(self, real, args, gaps, pending):
        self._real, self._args, self._gaps, self._pending, self._syn = real, args, gaps, pending, None

    def _resolve(self):
        if self._syn is None:
            self._syn = self._real.GetConnections(*self._args)
        return self._syn

    def __getattr__(self, name):
        return getattr(self._resolve(), name)

    def __len__(self):
        return len(self._resolve())

    def set(self, params=None, **kwargs):
        if kwargs:
            params = dict(params or {}, **kwargs)
        if self._syn is None and getattr(self._real.kernel(), "_sim", None) is None:
            self._gaps.add("GetConnections(...).set(...) before the last Create (eprop_dist builds the network at "
                           "GetConnections, a later Create fails; deferred to the first Simulate)")
            self._pending.append((self._args, params))
            return None
        return _set_synapses(self._resolve(), params, self._gaps)


def _get_connections(real, shim):
    def GetConnections(source=None, target=None, synapse_model=None):
        return _SynapseCollectionShim(real, (source, target, synapse_model), shim._gaps, shim._pending)
    return GetConnections


def _simulate(real, shim):
    def Simulate(ms):
        while shim._pending:
            args, params = shim._pending.pop(0)
            _set_synapses(real.GetConnections(*args), params, shim._gaps)
        return real.Simulate(ms)
    return Simulate


# PyNEST calls whose NEST forms eprop_dist does not accept: the real call is tried first, the
# workaround is used (and reported) only when it fails
SHIM_WRAPS = {"Create": _create, "SetDefaults": _set_defaults, "GetConnections": _get_connections,
              "Simulate": _simulate}


class NestShim(types.ModuleType):
    """``sys.modules['nest']`` for the eprop-dist run: eprop_dist plus the missing PyNEST names."""

    def __init__(self, real):
        super().__init__("nest")
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_gaps", set())
        object.__setattr__(self, "_detached", set())
        object.__setattr__(self, "_pending", [])

    def __getattr__(self, name):
        real = object.__getattribute__(self, "_real")
        if name in SHIM_WRAPS:
            return SHIM_WRAPS[name](real, self)
        if hasattr(real, name):
            return getattr(real, name)
        raise AttributeError(f"eprop_dist (as nest) has no attribute '{name}'")

    def __setattr__(self, name, value):
        real = object.__getattribute__(self, "_real")
        if hasattr(real, name):
            setattr(real, name, value)
        elif name in SHIM_SETTABLE:
            object.__getattribute__(self, "_gaps").add(f"nest.{name} = ... (assignment)")
            object.__setattr__(self, name, value)
        else:
            raise AttributeError(f"eprop_dist (as nest) has no settable attribute '{name}'")


def child_example(simulator: str, script: str, workload: str):
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.colors", "cycler"):
        sys.modules[name] = _stub_module(name)
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        for name in ("IPython", "IPython.display"):
            sys.modules[name] = _stub_module(name)
    shim = None
    if simulator == "eprop":
        import eprop_dist
        shim = NestShim(eprop_dist)
        sys.modules["nest"] = shim
    with open(script) as f:
        code = compile(f.read(), script, "exec")
    g = {"__name__": "__main__", "__file__": script}
    t0 = time.perf_counter()
    try:
        exec(code, g)                       # the example ends with exit() when plotting is off
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    t_exec = time.perf_counter() - t0
    if workload == "W3":
        rd = g["results_dict"]
        res = {k: [x if isinstance(x, str) else float(x) for x in rd[k]] for k in ("loss", "error")}
        res["iteration"] = [int(x) for x in rd["iteration"]]
        res["label"] = [str(x) for x in rd["label"]]
    else:
        res = {"loss": [float(x) for x in g["loss"]]}
    res["n_spikes_rec"] = int(len(g["events_sr_rec"]["times"])) if "events_sr_rec" in g else None
    res["exec_s"] = t_exec
    res["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    res["gaps"] = sorted(object.__getattribute__(shim, "_gaps")) if shim is not None else []
    print(RESULT_TAG + json.dumps(res), flush=True)


# =============================================================================================
# driver
# =============================================================================================
def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


def run_child(cmd, timeout, cwd=None, env=None):
    """Run cmd; whole-process wall time and peak RSS (this child and its waited-for descendants).

    Linux starts a child's RSS high-water mark at that of the process it was forked from, so the
    figure is at least this driver's RSS: the driver imports only the standard library (~10 MiB)."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                             start_new_session=True)
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    return {"cmd": cmd, "rc": p.returncode, "timed_out": timed_out, "wall_s": wall,
            "peak_rss_MiB": ru.ru_maxrss / 1024.0, "cpu_s": ru.ru_utime + ru.ru_stime,   # user + sys
            "stdout": out, "stderr": err}


def tagged(stdout, tag):
    return [json.loads(ln[len(tag):]) for ln in stdout.splitlines() if ln.startswith(tag)]


def child_failed(r, what):
    if r["rc"] == 0:
        return None
    why = "timed out" if r["timed_out"] else f"exit status {r['rc']}"
    return f"{what}: {why}; command: {shlex.join(r['cmd'])}\n{r['stderr'][-3000:]}"


def rel_close(a, b, rtol):
    return len(a) == len(b) and all(abs(x - y) <= rtol * max(abs(x), abs(y)) for x, y in zip(a, b))


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_example(w, a, tmp):
    script, title = EXAMPLES[w]
    src_path = example_path(script)
    with open(src_path) as f:
        src = patch_constants(f.read(), example_patches(w, a))
    wdir = os.path.join(tmp, w)
    os.makedirs(wdir, exist_ok=True)
    path = os.path.join(wdir, script)
    with open(path, "w") as f:
        f.write(src)
    rows, errors = {}, []
    for sim in ("nest", "eprop"):
        cmd = [sys.executable, os.path.abspath(__file__), "--child-example", sim, path, w]
        r = run_child(cmd, a.timeout, cwd=wdir, env=child_env())
        err = child_failed(r, f"{w} {sim}")
        res = tagged(r["stdout"], RESULT_TAG)
        if err is None and not res:
            err = f"{w} {sim}: no result line in the output"
        if err:
            errors.append(err)
            rows[sim] = {"wall_s": r["wall_s"], "peak_rss_MiB": r["peak_rss_MiB"], "failed": err}
            continue
        rows[sim] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_MiB": r["peak_rss_MiB"], **res[-1]}
        print(f"  {w} {sim:5s} {r['wall_s']:8.1f} s {r['peak_rss_MiB']:7.0f} MiB ({r['cpu_s']:.1f} s CPU)",
              flush=True)
    if w == "W2" and not errors:
        # memory flat in simulated time?  eprop-dist once more with a quarter of the iterations
        n_full = a.n_iter if a.n_iter is not None else 200
        n_short = max(1, n_full // 4)
        spath = os.path.join(wdir, "short_" + script)
        with open(src_path) as f:
            src_short = patch_constants(f.read(), dict(example_patches(w, a), n_iter=n_short))
        with open(spath, "w") as f:
            f.write(src_short)
        r = run_child([sys.executable, os.path.abspath(__file__), "--child-example", "eprop", spath, w],
                      a.timeout, cwd=wdir, env=child_env())
        err = child_failed(r, f"{w} eprop ({n_short} iterations)")
        if err:
            errors.append(err)
        else:
            rows["eprop_short"] = {"n_iter": n_short, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                                   "peak_rss_MiB": r["peak_rss_MiB"]}
            print(f"  {w} eprop {r['wall_s']:8.1f} s {r['peak_rss_MiB']:7.0f} MiB ({n_short} iterations)", flush=True)
    out = {"title": title, "script": f"nest/{EXAMPLE_DIR}/{script}", "patches": example_patches(w, a),
           "runs": rows, "errors": errors}
    if not errors:
        n, e = rows["nest"], rows["eprop"]
        ok = rel_close(n["loss"], e["loss"], a.rtol)
        detail = (f"{len(n['loss'])} losses, NEST {n['loss'][0]:.6f} -> {n['loss'][-1]:.6f}, "
                  f"eprop-dist {e['loss'][0]:.6f} -> {e['loss'][-1]:.6f}")
        if w == "W3":
            ok = ok and rel_close(n["error"], e["error"], a.rtol) and n["label"] == e["label"]
            detail += f", errors {n['error'][-1]:.4f} / {e['error'][-1]:.4f}, phases {len(n['label'])}"
        if not ok:
            bad = [i for i, (x, y) in enumerate(zip(n["loss"], e["loss"]))
                   if abs(x - y) > a.rtol * max(abs(x), abs(y))]
            detail += f"; first differing iteration {bad[0] if bad else 'n/a'}"
        out["check"] = {"ok": ok, "what": f"losses equal to rtol {a.rtol:g}", "detail": detail}
        out["ratios"] = {"time": n["wall_s"] / e["wall_s"], "memory": n["peak_rss_MiB"] / e["peak_rss_MiB"],
                         "cpu": n["cpu_s"] / max(e["cpu_s"], 1e-9)}
        out["gaps"] = e["gaps"]
        if "eprop_short" in rows:
            sh = rows["eprop_short"]
            out["memory_growth"] = {"iterations": [sh["n_iter"], len(e["loss"])],
                                    "peak_rss_MiB": [sh["peak_rss_MiB"], e["peak_rss_MiB"]]}
    return out


def mpiexec_cmd():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = local if os.path.exists(local) else shutil.which("mpiexec")
    if not exe:
        raise BenchError("mpiexec not found (needed for the 2-rank runs); install the extra: pip install '.[mpich]'")
    return [exe]


def run_scale(a):
    script = os.path.join(HERE, "scale_test_net.py")
    sizes, errors, out = a.w4_sizes, [], {"title": "sparse scale test (issue 8)", "sizes": {}}
    for n in sizes:
        runs = {}
        plan = [("nest", "eprop", 1), ("nest", "static", 1), ("eprop", "eprop", 1), ("eprop", "static", 1)]
        plan += [("eprop", "eprop", r) for r in a.w4_ranks if r > 1]
        for sim, syn, ranks in plan:
            key = f"{sim}/{syn}/{ranks}"
            cmd = [sys.executable, script, "--simulator", sim, "--n-rec", str(n), "--synapse", syn,
                   "--t-sim", str(a.w4_t_sim)]
            if ranks > 1:
                cmd = mpiexec_cmd() + ["-n", str(ranks), sys.executable, "-m", "mpi4py"] + cmd[1:]
            r = run_child(cmd, a.timeout, env=child_env())
            err = child_failed(r, f"W4 N={n} {key}")
            res = tagged(r["stdout"], "SCALE_RESULT ")
            if err is None and len(res) != ranks:
                err = f"W4 N={n} {key}: {len(res)} result lines for {ranks} rank(s)"
            if err:
                errors.append(err)
                runs[key] = {"wall_s": r["wall_s"], "failed": err}
                continue
            runs[key] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_MiB": r["peak_rss_MiB"],
                         "peak_rss_MiB_sum_ranks": sum(x["peak_rss_MiB"] for x in res),
                         "rate_hz": res[0]["rate_hz"], "n_spikes": res[0]["n_spikes"],
                         "spikes_sha256": res[0]["spikes_sha256"],
                         "build_s": max(x["build_s"] for x in res), "sim_s": max(x["sim_s"] for x in res)}
            print(f"  W4 N={n} {key:16s} {r['wall_s']:8.1f} s {runs[key]['peak_rss_MiB_sum_ranks']:7.0f} MiB "
                  f"{runs[key]['rate_hz']:6.2f} Hz ({r['cpu_s']:.1f} s CPU)", flush=True)
        row = {"runs": runs}
        g = lambda k, f: runs.get(k, {}).get(f)  # noqa: E731
        checks = []
        for syn in ("eprop", "static"):
            rn, re_ = g(f"nest/{syn}/1", "rate_hz"), g(f"eprop/{syn}/1", "rate_hz")
            if rn is not None and re_ is not None:
                d = abs(rn - re_) / rn
                checks.append({"ok": d <= a.rate_rtol, "what": f"{syn} firing rate within {a.rate_rtol:.0%}",
                               "detail": f"NEST {rn:.2f} Hz, eprop-dist {re_:.2f} Hz ({d:.1%})"})
        for r in a.w4_ranks:
            s1, sr = g("eprop/eprop/1", "spikes_sha256"), g(f"eprop/eprop/{r}", "spikes_sha256")
            if r > 1 and s1 is not None and sr is not None:
                checks.append({"ok": s1 == sr, "what": f"{r} ranks == 1 rank (all spikes)",
                               "detail": f"{g('eprop/eprop/1', 'n_spikes')} vs {g(f'eprop/eprop/{r}', 'n_spikes')} "
                                         f"spikes, sha256 {s1} vs {sr}"})
        row["checks"] = checks
        ratios = {}
        if g("nest/eprop/1", "wall_s") and g("eprop/eprop/1", "wall_s") and "failed" not in runs["eprop/eprop/1"]:
            ratios["time_nest_over_eprop"] = runs["nest/eprop/1"]["wall_s"] / runs["eprop/eprop/1"]["wall_s"]
            ratios["memory_nest_over_eprop"] = (runs["nest/eprop/1"].get("peak_rss_MiB", 0)
                                                / runs["eprop/eprop/1"]["peak_rss_MiB"])
        if "peak_rss_MiB" in runs.get("eprop/static/1", {}) and "peak_rss_MiB" in runs.get("eprop/eprop/1", {}):
            ratios["eprop_over_static_ours"] = runs["eprop/eprop/1"]["wall_s"] / runs["eprop/static/1"]["wall_s"]
            ratios["eprop_over_static_ours_sim_only"] = (runs["eprop/eprop/1"]["sim_s"]
                                                         / max(runs["eprop/static/1"]["sim_s"], 1e-9))
        for r in a.w4_ranks:
            if r > 1 and "peak_rss_MiB" in runs.get(f"eprop/eprop/{r}", {}) and \
                    "peak_rss_MiB" in runs.get("eprop/eprop/1", {}):
                ratios[f"speedup_{r}_ranks"] = runs["eprop/eprop/1"]["wall_s"] / runs[f"eprop/eprop/{r}"]["wall_s"]
                ratios[f"speedup_{r}_ranks_sim_only"] = (runs["eprop/eprop/1"]["sim_s"]
                                                         / runs[f"eprop/eprop/{r}"]["sim_s"])
        row["ratios"] = ratios
        out["sizes"][str(n)] = row
    out["errors"] = errors
    return out


def run_w5(a):
    cmd = mpiexec_cmd() + ["-n", "2", sys.executable, "-m", "mpi4py", os.path.join(HERE, "scaling.py"),
                           "--worker", "--n", str(a.w5_n), "--delay", "1", "--t-sim", str(a.w5_t_sim),
                           "--exchange", "alltoall", "--warmup", "100"]
    r = run_child(cmd, a.timeout, env=child_env())
    err = child_failed(r, "W5")
    res = tagged(r["stdout"], "RESULT ")
    if err is None and not res:
        err = "W5: no RESULT line in the worker's output"
    out = {"title": f"eprop-dist only: benchmarks/scaling.py network, N={a.w5_n}, 2 ranks", "wall_s": r["wall_s"],
           "errors": [err] if err else []}
    if not err:
        x = res[-1]
        out["result"] = x
        out["summary"] = {"sim_s_per_bio_s": x["sim_s_per_bio_s"], "build_s": x["build_s"],
                          "bytes_per_synapse_state": x["bytes_per_synapse"],
                          "peak_bytes_per_synapse_all_ranks": sum(x["peak_rss_MiB_per_rank"]) * 2**20 / x["synapses"],
                          "peak_rss_MiB_per_rank": x["peak_rss_MiB_per_rank"]}
        print(f"  W5 N={a.w5_n} {x['sim_s_per_bio_s']:.1f} s/bio-s build {x['build_s']:.1f} s", flush=True)
    return out


def fmt_table(report):
    lines = ["| workload | NEST 3.10.0 | eprop-dist | NEST / eprop-dist (time, memory) | check |",
             "|---|---|---|---|---|"]
    W = report["workloads"]
    for w in ("W1", "W2", "W3"):
        if w not in W:
            continue
        x = W[w]
        if x["errors"]:
            lines.append(f"| {w} {x['title']} | FAILED | | | {x['errors'][0].splitlines()[0]} |")
            continue
        n, e = x["runs"]["nest"], x["runs"]["eprop"]
        it = f", {len(n['loss'])} iterations" if w != "W3" else f", {len(n['label'])} phases"
        cpu = lambda r: f" ({r['cpu_s']:.1f} s CPU)" if "cpu_s" in r else ""      # noqa: E731
        rc = f" (CPU {x['ratios']['cpu']:.2f}x)" if "cpu" in x["ratios"] else ""
        lines.append(f"| {w} {x['title']}{it} | {n['wall_s']:.1f} s{cpu(n)}, {n['peak_rss_MiB']:.0f} MiB | "
                     f"{e['wall_s']:.1f} s{cpu(e)}, {e['peak_rss_MiB']:.0f} MiB | {x['ratios']['time']:.2f}x{rc}, "
                     f"{x['ratios']['memory']:.2f}x | {'ok' if x['check']['ok'] else 'MISMATCH'}: "
                     f"{x['check']['detail']} |")
        if "memory_growth" in x:
            mg = x["memory_growth"]
            lines.append(f"| {w} eprop-dist memory vs simulated time | | {mg['peak_rss_MiB'][0]:.0f} MiB at "
                         f"{mg['iterations'][0]} iterations, {mg['peak_rss_MiB'][1]:.0f} MiB at "
                         f"{mg['iterations'][1]} | | |")
    if "W4" in W:
        for n, row in W["W4"]["sizes"].items():
            runs, ra = row["runs"], row["ratios"]

            def cell(k):
                r = runs.get(k)
                if r is None:
                    return "-"
                if "failed" in r:
                    return "FAILED"
                return f"{r['wall_s']:.1f} s, {r['peak_rss_MiB_sum_ranks']:.0f} MiB, {r['rate_hz']:.2f} Hz"
            chk = "; ".join(("ok" if c["ok"] else "MISMATCH") + f" {c['what']} ({c['detail']})" for c in row["checks"])
            tr = f"{ra['time_nest_over_eprop']:.2f}x, {ra['memory_nest_over_eprop']:.2f}x" \
                if "time_nest_over_eprop" in ra else "-"
            lines.append(f"| W4 scale test N={n}, e-prop | {cell('nest/eprop/1')} | {cell('eprop/eprop/1')} | {tr} | {chk} |")
            st = runs.get("eprop/static/1", {})
            lines.append(f"| W4 scale test N={n}, static | {cell('nest/static/1')} | {cell('eprop/static/1')} | "
                         + (f"ours e-prop/static {ra['eprop_over_static_ours']:.1f}x (sim only "
                            f"{ra['eprop_over_static_ours_sim_only']:.0f}x)" if "eprop_over_static_ours" in ra
                            else "-") + " | |" if st else "")
            for k in runs:
                if k.startswith("eprop/eprop/") and k != "eprop/eprop/1":
                    r = k.rsplit("/", 1)[1]
                    sp = (f"{r}-rank speed-up {ra[f'speedup_{r}_ranks']:.2f}x (sim only "
                          f"{ra[f'speedup_{r}_ranks_sim_only']:.2f}x)") if f"speedup_{r}_ranks" in ra else "-"
                    lines.append(f"| W4 scale test N={n}, e-prop, {r} ranks | | {cell(k)} | {sp} | |")
    if "W5" in W:
        x = W["W5"]
        if x["errors"]:
            lines.append(f"| W5 | - | FAILED | | {x['errors'][0].splitlines()[0]} |")
        else:
            s = x["summary"]
            lines.append(f"| W5 {x['title']} | - | {s['sim_s_per_bio_s']:.1f} s per bio-s, build {s['build_s']:.1f} s, "
                         f"{s['bytes_per_synapse_state']:.0f} B/synapse state, "
                         f"{s['peak_bytes_per_synapse_all_ranks']:.0f} B/synapse peak (all ranks) | | |")
    return "\n".join(ln for ln in lines if ln)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--only", nargs="+", metavar="W", help="workloads to run (default W1-W4; W5 needs --w5)")
    p.add_argument("--n-iter", type=int, help="W1/W2: training iterations (example default 200)")
    p.add_argument("--w3-n-iter-train", type=int, help="W3: training iterations (example default 50)")
    p.add_argument("--w3-n-iter-test", type=int, help="W3: test iterations (example default 4)")
    p.add_argument("--w3-batch-size", type=int, help="W3: batch size (example default 32)")
    p.add_argument("--w4-sizes", type=int, nargs="+", default=[4000, 10000], help="W4: recurrent neurons")
    p.add_argument("--w4-ranks", type=int, nargs="+", default=[2], help="W4: eprop-dist rank counts besides 1")
    p.add_argument("--w4-t-sim", type=float, default=1005.0, help="W4: simulated ms (default 1005)")
    p.add_argument("--w5", action="store_true", help="also run W5 (10^6 neurons on 2 ranks, ~13 GB)")
    p.add_argument("--w5-n", type=int, default=1000000, help="W5: recurrent neurons")
    p.add_argument("--w5-t-sim", type=int, default=1000, help="W5: timed biological ms after 100 ms warm-up")
    p.add_argument("--rtol", type=float, default=1e-8, help="W1-W3: relative tolerance of the losses")
    p.add_argument("--rate-rtol", type=float, default=0.05, help="W4: relative tolerance of firing rates")
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per child process")
    p.add_argument("--out", default="", help="write the results as JSON to this file")
    p.add_argument("--child-example", nargs=3, metavar=("SIM", "SCRIPT", "W"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child_example:
        return a
    only = a.only or (list(ALL[:4]) + (["W5"] if a.w5 else []))
    bad = [w for w in only if w not in ALL]
    if bad:
        p.error(f"--only: unknown workload(s) {', '.join(bad)}; choose from {' '.join(ALL)}")
    if "W5" in only and not a.w5:
        p.error("--only W5 needs --w5 (the default W5 network needs about 13 GB on 2 ranks)")
    if a.w5 and "W5" not in only:
        only.append("W5")
    a.only = [w for w in ALL if w in only]
    for opt in ("n_iter", "w3_n_iter_train", "w3_batch_size"):
        v = getattr(a, opt)
        if v is not None and v < 1:
            p.error(f"--{opt.replace('_', '-')} must be >= 1, got {v}")
    if a.w3_n_iter_test is not None and a.w3_n_iter_test < 0:
        p.error(f"--w3-n-iter-test must be >= 0, got {a.w3_n_iter_test}")
    if any(n < 101 for n in a.w4_sizes):
        p.error(f"--w4-sizes must be > 100 (fixed in-degree 100 without autapses), got {a.w4_sizes}")
    if any(r < 1 for r in a.w4_ranks):
        p.error(f"--w4-ranks must be >= 1, got {a.w4_ranks}")
    if not a.w4_t_sim > 1:
        p.error(f"--w4-t-sim must be > 1 ms, got {a.w4_t_sim}")
    if a.w5_n < 1000 or a.w5_t_sim < 1:
        p.error(f"--w5-n must be >= 1000 and --w5-t-sim >= 1, got {a.w5_n} and {a.w5_t_sim}")
    if not (a.rtol >= 0 and a.rate_rtol >= 0 and a.timeout > 0):
        p.error("--rtol and --rate-rtol must be >= 0 and --timeout > 0")
    if a.out:
        d = os.path.dirname(os.path.abspath(a.out))
        if not os.path.isdir(d) or not os.access(d, os.W_OK):
            p.error(f"--out: folder {d} does not exist or is not writable")
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.child_example:
        child_example(*a.child_example)
        return 0
    try:
        # everything that can fail before the work starts
        for w in a.only:
            if w in EXAMPLES:
                with open(example_path(EXAMPLES[w][0])) as f:
                    patch_constants(f.read(), example_patches(w, a))
            if w == "W4" and importlib.util.find_spec("nest") is None:
                raise BenchError(f"NEST is not installed in this Python ({sys.executable}); {NEST_HINT}")
        if (a.w5 or ("W4" in a.only and any(r > 1 for r in a.w4_ranks))):
            mpiexec_cmd()
    except BenchError as e:
        print(f"vs_nest: {e}", file=sys.stderr)
        return 2
    command = shlex.join([sys.executable, os.path.relpath(os.path.abspath(__file__))] + argv)
    report = {"machine": machine_info(), "command": command, "load_before": os.getloadavg(), "workloads": {},
              "driver_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(f"vs_nest: {report['machine']['cpu']}, {report['machine']['cores']} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in report['load_before'])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vs_nest_") as tmp:
        for w in a.only:
            load0 = os.getloadavg()
            if w in EXAMPLES:
                x = run_example(w, a, tmp)
            elif w == "W4":
                x = run_scale(a)
            else:
                x = run_w5(a)
            x["load_before"], x["load_after"] = load0, os.getloadavg()
            report["workloads"][w] = x
    report["load_after"] = os.getloadavg()
    table = fmt_table(report)
    report["table"] = table
    gaps = sorted({g for x in report["workloads"].values() for g in x.get("gaps", [])})
    report["pynest_gaps_shimmed"] = gaps
    print()
    print(table)
    print(f"\nmachine: {report['machine']['cpu']}, {report['machine']['cores']} cores, {report['machine']['platform']}; "
          f"load average before {' '.join(f'{x:.2f}' for x in report['load_before'])}, after "
          f"{' '.join(f'{x:.2f}' for x in report['load_after'])}")
    if gaps:
        print("PyNEST names eprop_dist lacks (provided by this runner): " + ", ".join(gaps))
    print(f"command: {command}")
    failed = [e for x in report["workloads"].values() for e in x.get("errors", [])]
    checks = [c for w, x in report["workloads"].items() for c in
              ([x["check"]] if "check" in x else []) + [c for r in x.get("sizes", {}).values() for c in r["checks"]]]
    bad = [c for c in checks if not c["ok"]]
    for e in failed:
        print("\nFAILED " + e, file=sys.stderr)
    for c in bad:
        print(f"CHECK FAILED: {c['what']}: {c['detail']}", file=sys.stderr)
    report["ok"] = not failed and not bad
    if a.out:
        tmp_out = a.out + ".tmp"
        with open(tmp_out, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp_out, a.out)
        print(f"wrote {a.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
