"""Scaling studies: TOML study files, Slurm batch scripts and submission, a local mpiexec runner,
one HDF5 file per point, and the merged table and plots (README "Scaling studies")."""
from .study import Point, Study, StudyError, load, validate  # noqa: F401
