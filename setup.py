"""Build eprop-dist: the Cython core in csrc/ is compiled at install time (DESIGN 3).

All compiler directives live here.  EPROP_CYTHON_DEBUG=1 turns bounds, wraparound and
initialisation checks back on (CI runs the suite once that way).
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("EPROP_CYTHON_DEBUG", "0") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}

COMPILE_ARGS = ["-O1", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        f"eprop_dist._{name}",
        [f"csrc/{name}.pyx"],
        include_dirs=[np.get_include(), "csrc"],
        extra_compile_args=COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in ("core", "connect", "exchange")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["csrc"],
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
