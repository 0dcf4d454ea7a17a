"""The study folder: study.toml (copy), points/*.json, scripts/*.sbatch, logs/, results/*.h5,
jobs.json (Slurm job ids), scaling.h5 + scaling.md + plots/*.png (analyze)."""
from __future__ import annotations

import json
import os
import shutil

from .study import Study, StudyError, load


def default_dir(study: Study) -> str:
    return os.path.join(os.path.dirname(study.path), study.name)


def prepare(study: Study, out: str | None = None) -> str:
    """Create the folder, copy the study file and write one JSON file per point."""
    d = os.path.abspath(out or default_dir(study))
    for sub in ("points", "scripts", "logs", "results"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    dst = os.path.join(d, "study.toml")
    if os.path.abspath(study.path) != dst:
        if os.path.exists(dst):
            with open(dst, "rb") as a, open(study.path, "rb") as b:
                if a.read() != b.read():
                    raise StudyError(f"{d} already holds a different study.toml; use another --out or remove it")
        else:
            shutil.copyfile(study.path, dst)
    for p in study.points:
        path = point_json(d, p)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(p.as_dict(), f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    return d


def point_json(d, p):
    return os.path.join(d, "points", p.tag + ".json")


def result_h5(d, p):
    return os.path.join(d, "results", p.tag + ".h5")


def open_dir(path: str) -> tuple[Study, str]:
    """A study folder (or a study file whose default folder exists) -> (study, folder)."""
    if os.path.isdir(path):
        f = os.path.join(path, "study.toml")
        if not os.path.isfile(f):
            raise StudyError(f"{path} is not a study folder (no study.toml); run 'submit' or 'run' first")
        return load(f), os.path.abspath(path)
    st = load(path)
    d = default_dir(st)
    if not os.path.isdir(d):
        raise StudyError(f"study folder {d} does not exist; run 'submit' or 'run' first")
    return load(os.path.join(d, "study.toml")), d


def read_jobs(d) -> dict:
    p = os.path.join(d, "jobs.json")
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        return json.load(f)


def write_jobs(d, jobs: dict):
    p = os.path.join(d, "jobs.json")
    with open(p + ".tmp", "w") as f:
        json.dump(jobs, f, indent=1, sort_keys=True)
    os.replace(p + ".tmp", p)
