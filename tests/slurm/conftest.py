"""tests/slurm needs a running Slurm (launch/local_slurm.sh up; SLURM_CONF exported).  Without one
every test FAILS with the reason (never skips)."""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def slurm():
    for cmd in ("sbatch", "scontrol", "sinfo", "scancel"):
        if shutil.which(cmd) is None:
            pytest.fail(f"'{cmd}' not found: start Slurm with `bash launch/local_slurm.sh up` and "
                        "`eval \"$(bash launch/local_slurm.sh env)\"`")
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 or not r.stdout.strip():
        pytest.fail(f"Slurm is not reachable (SLURM_CONF={os.environ.get('SLURM_CONF')}): {r.stderr.strip()}")
    return r.stdout.split()
