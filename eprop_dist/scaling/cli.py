"""``eprop-dist slurm ...`` and ``eprop-dist scaling ...``: the hook :func:`add_subcommands` adds both
to the main command's subparsers; each parser's ``func(args)`` returns the exit code."""
from __future__ import annotations

import sys

from ..errors import EpropError


def _err(e) -> int:
    print(f"eprop-dist: error: {e}", file=sys.stderr, flush=True)
    return 2


def _guard(fn):
    def run(args):
        try:
            return fn(args) or 0
        except EpropError as e:
            return _err(e)
    return run


def _print_status(rows):
    w = max([len(r["tag"]) for r in rows] + [5])
    print(f"{'point':{w}}  {'job':>8}  {'state':14} {'detail':24} result")
    for r in rows:
        print(f"{r['tag']:{w}}  {r['job_id']:>8}  {r['state']:14} {r['detail'][:24]:24} {r['result']}")


def cmd_submit(a):
    from .slurm import submit
    from .study import load
    st = load(a.study)
    d, jobs = submit(st, a.out, force=a.force, dry_run=a.dry_run)
    for p in st.points:
        j = jobs.get(p.tag)
        print(f"{p.tag}: {p.ranks} rank(s) on {p.nodes} node(s): "
              + ("script written" if a.dry_run else f"job {j['job_id']}" if j else "not submitted"))
    print(f"study folder: {d}")


def cmd_status(a):
    from .folder import open_dir
    from .slurm import status
    st, d = open_dir(a.study_dir)
    _print_status(status(st, d))


def _wait_and_report(st, d, timeout, poll=1.0):
    """Poll until every job ended; print the states; raise (with log tails) if a point has no result."""
    from .folder import read_jobs
    from .slurm import log_tail, wait
    rows = wait(st, d, timeout=timeout, poll=poll, report=lambda s: print(s, flush=True))
    _print_status(rows)
    bad = [r for r in rows if r["result"] != "complete"]
    if bad:
        jobs = read_jobs(d)
        for r in bad:
            p = next(p for p in st.points if p.tag == r["tag"])
            if r["tag"] in jobs:
                print(f"--- {r['tag']} (job {r['job_id']}, {r['state']}) log tail:\n"
                      + log_tail(d, p, jobs[r['tag']]["job_id"]), file=sys.stderr)
        raise EpropError(f"{len(bad)} point(s) finished without a complete result: "
                         + ", ".join(f"{r['tag']} ({r['state']})" for r in bad))
    return rows


def cmd_wait(a):
    from .folder import open_dir
    st, d = open_dir(a.study_dir)
    _wait_and_report(st, d, a.timeout, a.poll)


def cmd_collect(a):
    from .analyze import analyze
    from .folder import open_dir
    st, d = open_dir(a.study_dir)
    res = analyze(st, d, plots=False, allow_missing=a.allow_missing)
    print(res["markdown"])
    print("wrote " + ", ".join(res["files"]))


def cmd_validate(a):
    from .study import load
    st = load(a.study)
    print(f"study {st.name}: {st.study['kind']} scaling, {len(st.points)} point(s)")
    for p in st.points:
        n = p.network
        print(f"  {p.tag}: {p.ranks} rank(s) on {p.nodes} node(s), n_rec {n['n_rec']}, n_in {n['n_in']}, "
              f"n_out {n['n_out']}, {p.warmup} ms warm-up + {p.t_sim} ms")


def cmd_run(a):
    from .analyze import analyze
    from .study import load
    st = load(a.study)
    if a.local:
        from .local import run_local
        d = run_local(st, a.out, mpiexec=a.mpiexec, force=a.force, timeout=a.timeout)
    else:
        from .slurm import submit
        d, _ = submit(st, a.out, force=a.force)
        _wait_and_report(st, d, a.timeout)
    res = analyze(st, d, plots=not a.no_plots)
    print(res["markdown"])
    print("wrote " + ", ".join(res["files"]))


def cmd_analyze(a):
    from .analyze import analyze
    from .folder import open_dir
    st, d = open_dir(a.study_dir)
    res = analyze(st, d, plots=not a.no_plots, allow_missing=a.allow_missing)
    print(res["markdown"])
    print("wrote " + ", ".join(res["files"]))


def cmd_worker(a):
    from .worker import main
    try:
        return main(a)
    except EpropError as e:
        code = _err(e)
        from ..comm import world
        w = world()
        if w.size > 1:          # an error on one rank ends the whole job
            w.abort(code)
        return code


def add_subcommands(subparsers):
    s = subparsers.add_parser("slurm", help="scaling studies through Slurm: submit, status, wait, collect")
    ss = s.add_subparsers(dest="slurm_cmd", required=True)
    x = ss.add_parser("submit", help="write one batch script per point and sbatch them")
    x.add_argument("study", help="study file (TOML)")
    x.add_argument("--out", help="study folder (default: next to the study file, named after the study)")
    x.add_argument("--force", action="store_true", help="resubmit points that already have a result")
    x.add_argument("--dry-run", action="store_true", help="write the scripts only")
    x.set_defaults(func=_guard(cmd_submit))
    x = ss.add_parser("status", help="each point's job state (scontrol) and result")
    x.add_argument("study_dir")
    x.set_defaults(func=_guard(cmd_status))
    x = ss.add_parser("wait", help="poll scontrol until every point's job has ended")
    x.add_argument("study_dir")
    x.add_argument("--timeout", type=float, default=3600.0)
    x.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    x.set_defaults(func=_guard(cmd_wait))
    x = ss.add_parser("collect", help="merge the finished points into scaling.h5 / scaling.md")
    x.add_argument("study_dir")
    x.add_argument("--allow-missing", action="store_true")
    x.set_defaults(func=_guard(cmd_collect))

    s = subparsers.add_parser("scaling", help="scaling studies: validate, run (--local or Slurm), analyze")
    ss = s.add_subparsers(dest="scaling_cmd", required=True)
    x = ss.add_parser("validate", help="check a study file and list its points")
    x.add_argument("study")
    x.set_defaults(func=_guard(cmd_validate))
    x = ss.add_parser("run", help="run every point (--local: mpiexec here; else sbatch + wait), then analyze")
    x.add_argument("study")
    x.add_argument("--local", action="store_true", help="launch each point with mpiexec on this machine")
    x.add_argument("--mpiexec", help="launcher command for --local (default: the venv's mpiexec)")
    x.add_argument("--out")
    x.add_argument("--force", action="store_true")
    x.add_argument("--no-plots", action="store_true")
    x.add_argument("--timeout", type=float, default=3600.0, help="per point (--local) or for all jobs")
    x.set_defaults(func=_guard(cmd_run))
    x = ss.add_parser("analyze", help="merged table (scaling.h5, scaling.md) and plots (plots/*.png)")
    x.add_argument("study_dir")
    x.add_argument("--no-plots", action="store_true")
    x.add_argument("--allow-missing", action="store_true")
    x.set_defaults(func=_guard(cmd_analyze))
    x = ss.add_parser("worker", help="(internal) run one point under MPI and write its HDF5 file")
    x.add_argument("point", help="point file (JSON) written by submit/run")
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_worker)
