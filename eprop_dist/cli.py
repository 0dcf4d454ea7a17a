"""The ``eprop-dist`` command (also ``python -m eprop_dist``).

    eprop-dist train [--task sine_waves] [--n-iter N] [--seq STEPS] [--neuron-model M] [--seed S]
                     [--config FILE.toml] [--out DIR]

Under MPI launch it as ``mpiexec -n N python -m mpi4py -m eprop_dist train ...`` so that an error on
one rank aborts the whole job.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import EpropError

TASKS = ("sine_waves",)


def _config(args):
    cfg = {}
    if args.config:
        import tomllib
        try:
            with open(args.config, "rb") as f:
                cfg = tomllib.load(f)
        except FileNotFoundError:
            raise EpropError(f"config file {args.config} not found") from None
        except tomllib.TOMLDecodeError as e:
            raise EpropError(f"config file {args.config} is not valid TOML: {e}") from None
    for key in ("n_iter", "seq", "neuron_model", "seed", "eta"):
        v = getattr(args, key)
        if v is not None:
            cfg[key] = v
    from .tasks import sine_waves
    unknown = set(cfg) - set(sine_waves.DEFAULTS) - {"task"}
    if unknown:
        raise EpropError(f"config: unknown key(s) {sorted(unknown)}; valid: {sorted(sine_waves.DEFAULTS)}")
    for key in ("n_iter", "seq", "seed"):
        if key in cfg and (not isinstance(cfg[key], int) or cfg[key] < (0 if key == "seed" else 1)):
            raise EpropError(f"config: {key} must be a positive integer, got {cfg[key]!r}")
    return cfg


def main(argv=None):
    p = argparse.ArgumentParser(prog="eprop-dist", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a task network with e-prop+ and print the loss per iteration")
    t.add_argument("--task", choices=TASKS, default="sine_waves")
    t.add_argument("--n-iter", dest="n_iter", type=int)
    t.add_argument("--seq", type=int, help="sequence length in steps (default 1000)")
    t.add_argument("--neuron-model", dest="neuron_model")
    t.add_argument("--seed", type=int)
    t.add_argument("--eta", type=float)
    t.add_argument("--config", help="TOML file with the same keys")
    t.add_argument("--out", default="results", help="output folder (results.h5)")
    from .scaling.cli import add_subcommands   # temporary hook (issue 11); the lead merges the dispatcher
    add_subcommands(sub)
    args = p.parse_args(argv)
    if hasattr(args, "func"):
        return args.func(args)
    try:
        cfg = _config(args)
        from .api import Kernel
        from .tasks import sine_waves
        k = Kernel()

        def report(line):             # every rank computes the same loss: print once
            if k._sim is None or k._sim.comm.rank == 0:
                print(line, flush=True)

        res = sine_waves.run(cfg, kernel=k, report=report)
        from .io import write_results
        sim = k._sim
        if sim.comm.rank == 0:
            path = write_results(os.path.join(args.out, "results.h5"), config=res["config"], loss=res["loss"],
                                 spikes={"rec": res["spikes"]}, timers=res["timers"], n_ranks=sim.comm.size)
            print(f"{res['steps']} steps in {res['t_sim']:.2f} s "
                  f"({res['steps'] / res['t_sim']:.0f} steps/s, build {res['t_build']:.2f} s); wrote {path}")
    except EpropError as e:
        print(f"eprop-dist: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
