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

# One extension per kernel module (csrc/eprop_dist/_*.pyx, declarations in the matching .pxd; the
# package folder gives the cimported classes their qualified names eprop_dist._*), plus the
# connection rules (csrc/connect.pyx) and the exchange's pack/unpack (csrc/exchange.pyx).
# Order: a module after the ones it cimports.
KERNELS = ("_neurons", "_history", "_optimizer", "_eprop_synapse", "_bsshslm_synapse", "_generators",
           "_recording", "_delivery", "_neurons_eprop", "_neurons_bsshslm", "_driver")


def _extension(module, source):
    return Extension(
        module,
        [source],
        include_dirs=[np.get_include(), "csrc"],
        extra_compile_args=COMPILE_ARGS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


extensions = [_extension(f"eprop_dist.{name}", f"csrc/eprop_dist/{name}.pyx") for name in KERNELS]
extensions.append(_extension("eprop_dist._connect", "csrc/connect.pyx"))
extensions.append(_extension("eprop_dist._exchange", "csrc/exchange.pyx"))   # MPI message pack/unpack

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["csrc"],
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
