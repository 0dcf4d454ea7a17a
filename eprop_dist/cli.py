"""The ``eprop-dist`` command (also ``python -m eprop_dist``).

    eprop-dist train [TASK] [--config FILE.toml] [--set key=value ...] [--family eprop_plus|bsshslm_2020]
                     [--out DIR] [--overwrite] [--quiet] [--checkpoint-every N] [--resume DIR]
    eprop-dist plot RUN_DIR [--out DIR]

TASK: sine_waves (default), evidence_accumulation, digits (offline N-MNIST stand-in), nmnist.
Under MPI launch it as ``mpiexec -n N python -m mpi4py -m eprop_dist train ...`` so that an error on
one rank aborts the whole job.  Other packages add subcommands through ``EXTENSIONS``: each listed module,
if importable, exposes ``add_subcommands(subparsers)``; a missing module simply adds nothing.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from .errors import EpropError

EXTENSIONS = ["eprop_dist.scaling.cli"]
TASK_NAMES = ("sine_waves", "evidence_accumulation", "digits", "nmnist")
# old shortcuts of the first CLI, kept as aliases of --set
SHORTCUTS = (("--n-iter", "n_iter", int), ("--seq", "seq", int), ("--neuron-model", "neuron_model", str),
             ("--seed", "seed", int), ("--eta", "eta", float))


class _Default(str):
    """A parser default that can be told from the same value given on the command line (--resume)."""


def log(msg, quiet=False):
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _task_module(name):
    return importlib.import_module(f".tasks.{name}", __package__)


def _phase_line(r, n_total):
    s = f"phase {r['phase'] + 1:4d}{'/' + str(n_total) if n_total else ''}  {r['label']:<14s} loss {r['loss']:.6f}"
    if r["accuracy"] is not None:
        s += f"  accuracy {r['accuracy']:.3f}"
    return s


def cmd_train(args):
    from . import config as C
    from .comm import world
    sets = C.parse_set(args.set)
    for opt, key, _ in SHORTCUTS:
        v = getattr(args, key)
        if v is not None:
            sets[key] = v
    file_cfg = C.load_toml(args.config) if args.config is not None else {}
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise EpropError(f"--checkpoint-every must be >= 0 phases (0: only on SIGTERM/SIGINT), got "
                         f"{args.checkpoint_every}")
    comm = world()
    resume = None
    if args.resume:
        from . import checkpoint as CK
        err = None
        try:            # every rank reads (and validates) the checkpoint before any work
            resume = CK.load(os.path.join(args.resume, CK.FILENAME))
            cfg = resume_config(resume["config"], None if isinstance(args.task, _Default) else args.task,
                                args.family, file_cfg, sets)
        except EpropError as e:
            err = e
        comm.check(err)
        out = args.resume if isinstance(args.out, _Default) else args.out
    else:
        cfg = C.resolve(str(args.task), args.family, file_cfg, sets)
        out = args.out
    args.out = str(out)
    root = comm.rank == 0
    quiet = args.quiet or not root
    err = None
    try:                                 # before any build or write; nodes may differ in memory, so
        C.check_memory(cfg)              # the decision is agreed on (one rank short: every rank stops)
    except C.ConfigError as e:
        err = e
    comm.check(err)
    if root:
        try:
            from .io import check_writable
            check_writable(args.out, overwrite=args.overwrite)
        except EpropError as e:
            err = e
    comm.check(err)
    from .api import Kernel
    from .checkpoint import CheckpointStop, Checkpointer, EXIT_CHECKPOINTED
    k = Kernel(comm=comm)
    ckpt = Checkpointer(comm, args.out, every=args.checkpoint_every or 0, config=C.as_dict(cfg), resume=resume,
                        log=lambda m: log(m, quiet))
    k.checkpointer = ckpt          # read by tasks.common.run_pipeline
    n_total = getattr(cfg, "n_iter", None)
    bar = None
    if root and not args.quiet:
        try:
            from tqdm import tqdm
            bar = tqdm(total=n_total or getattr(cfg, "n_iter_train", None), unit="phase", file=sys.stderr,
                       disable=not sys.stderr.isatty(), dynamic_ncols=True, desc=cfg.task)
        except ImportError:      # tqdm is a dependency; without it there are only the log lines
            bar = None

    def report(r):
        if quiet:
            return
        line = _phase_line(r, n_total)
        if bar is not None and not bar.disable:
            bar.write(line, file=sys.stderr)
            post = {"loss": f"{r['loss']:.4g}"}
            if r["accuracy"] is not None:
                post["acc"] = f"{r['accuracy']:.3f}"
            bar.set_postfix(post, refresh=False)
        else:
            log(line)

    def progress(n, label):
        if bar is not None and label == "training":
            bar.update(1)

    log(f"eprop-dist: task {cfg.task} ({cfg.family}) on {comm.size} rank(s); writing {args.out}", quiet)
    if resume is not None:
        log(f"eprop-dist: resuming {args.resume} after phase {resume['pipeline']['n']} (checkpoint written on "
            f"{resume['attrs']['n_ranks']} rank(s))", quiet)
    t0 = time.perf_counter()
    ckpt.install()
    try:
        rec = _task_module(cfg.task).run(cfg, k, report=report, progress=progress)
    except CheckpointStop as e:
        if root:
            print(f"eprop-dist: {e}; continue with: eprop-dist train --resume {args.out}", file=sys.stderr,
                  flush=True)
        return EXIT_CHECKPOINTED
    except EpropError as e:
        if comm.size > 1:            # may have happened on this rank only: end every rank now, no hang
            print(f"eprop-dist: rank {comm.rank}: error: {e}", file=sys.stderr, flush=True)
            comm.abort(2)
        raise
    finally:
        ckpt.uninstall()
        if bar is not None:
            bar.close()
    t_run = time.perf_counter() - t0
    from .io import write_results
    resolved = C.as_dict(cfg)
    timers = dict(rec["timers"])
    timers.update({f"kernel_{a}": b for a, b in rec["kernel_timers"].items()})
    timers["total"] = t_run
    info = {a: b for a, b in rec["info"].items() if not a.startswith("_") and a != "target"}
    prov = {"eta_train": rec["eta_train"], "task": cfg.task, "family": cfg.family, "n_phases": rec["n_phases"],
            "steps": rec["steps"], "task_info": info}
    if resume is not None:           # provenance of a resumed run: where it continued from
        prov["resumed_from"] = {"folder": os.path.abspath(args.resume), "phase": int(resume["pipeline"]["n"]),
                                "step": int(resume["attrs"]["t"]), "n_ranks": int(resume["attrs"]["n_ranks"])}
    path = os.path.join(args.out, "results.h5")
    err = None
    if root:
        try:
            extra = {"target": rec["info"]["target"]} if "target" in rec["info"] else None
            t1 = time.perf_counter()
            write_results(path, config=resolved, loss=[p["loss"] for p in rec["phases"]],
                          spikes=rec["spikes"], timers=dict(timers, write=0.0), n_ranks=comm.size, extra=extra,
                          record=rec, prov_extra=prov)
            timers["write"] = time.perf_counter() - t1
        except EpropError as e:
            err = e
    comm.check(err)
    if root:
        summ = _summary(rec)
        print(f"{cfg.task}: {rec['steps']} steps in {t_run:.1f} s on {comm.size} rank(s); {summ}; wrote {path}",
              flush=True)
    return 0


def resume_config(saved, task, family, file_cfg, sets):
    """The config of a resumed run: the checkpoint's, with only RESUME_CHANGEABLE keys allowed to change
    (--set/--config/TASK/--family that change any other key are refused, naming it)."""
    from . import config as C
    from .checkpoint import RESUME_CHANGEABLE
    given = dict(file_cfg or {})
    given.update(sets or {})
    if task is not None:
        given["task"] = task
    if family is not None:
        given["family"] = family
    changes = {}
    for key, v in given.items():
        if key in saved and saved[key] == v:
            continue
        if key not in RESUME_CHANGEABLE:
            raise C.ConfigError(f"--resume: config key '{key}' = {v!r} differs from the checkpoint's "
                                f"({saved.get(key)!r}); a resumed run keeps its config (changeable: "
                                f"{', '.join(RESUME_CHANGEABLE)})")
        changes[key] = v
    model = C.TASKS[saved["task"]]
    # keys at their defaults stay unset (validators look at which keys were set)
    data = {a: b for a, b in saved.items()
            if a in ("task", "family") or a not in model.model_fields or b != model.model_fields[a].default}
    cfg = C.resolve(saved["task"], None, data, changes)
    now = C.as_dict(cfg)
    for key in sorted(set(now) | set(saved)):
        if key not in RESUME_CHANGEABLE and now.get(key) != saved.get(key):
            raise C.ConfigError(f"--resume: config key '{key}' resolves to {now.get(key)!r}, the checkpoint "
                                f"has {saved.get(key)!r}")
    return cfg


def _summary(rec):
    ph = rec["phases"]
    tr = [p for p in ph if p["label"] == "training"]
    parts = []
    if tr:
        parts.append(f"training loss {tr[0]['loss']:.4g} -> {tr[-1]['loss']:.4g}")
    te = [p for p in ph if p["label"] == "test"]
    if te and te[0]["accuracy"] is not None:
        import numpy as np
        parts.append(f"test accuracy {np.mean([p['accuracy'] for p in te]):.3f}")
    return ", ".join(parts) or "no phase evaluated"


def cmd_plot(args):
    from .analysis.plots import plot_run
    files = plot_run(args.run_dir, args.out)
    for f in files:
        print(f)
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="eprop-dist", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a task network; writes DIR/results.h5",
                       description="Train one of the tasks; the loss (and accuracy) of every phase is logged to "
                                   "stderr, a progress bar shows on a terminal.")
    t.add_argument("task", nargs="?", default=_Default("sine_waves"), choices=TASK_NAMES, metavar="TASK",
                   help=f"one of {', '.join(TASK_NAMES)} (default sine_waves; with --resume: the checkpoint's)")
    t.add_argument("--config", help="TOML file of key = value pairs (see README, Command line)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key (TOML literal; repeatable); validated like the file")
    t.add_argument("--family", choices=("eprop_plus", "bsshslm_2020"),
                   help="model family (default: the task's NEST example)")
    t.add_argument("--out", default=_Default("results"), help="run folder (default ./results; with --resume: the resumed folder)")
    t.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="write OUT/checkpoint.h5 after every N phases (atomically; SIGTERM and Ctrl-C write one "
                        "at the end of the current phase and stop with exit code 75)")
    t.add_argument("--resume", metavar="DIR",
                   help="continue the run whose checkpoint is DIR/checkpoint.h5 (its config; only n_iter, "
                        "n_iter_train, n_iter_test may be changed), on any number of ranks")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in the output folder")
    t.add_argument("--quiet", action="store_true", help="no progress bar, no per-phase log lines")
    for opt, key, typ in SHORTCUTS:
        t.add_argument(opt, dest=key, type=typ, help=f"same as --set {key}=...")
    t.set_defaults(func=cmd_train)
    pl = sub.add_parser("plot", help="write PNG figures of a run folder")
    pl.add_argument("run_dir", metavar="RUN_DIR")
    pl.add_argument("--out", help="folder for the PNGs (default RUN_DIR)")
    pl.set_defaults(func=cmd_plot)
    for name in EXTENSIONS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                continue         # extension not installed / not written yet: no such subcommands
            raise
        mod.add_subcommands(sub)
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except EpropError as e:
        print(f"eprop-dist: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eprop-dist: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
