# conftest.py written beside NEST's own test files by tests/nest_suite/run_nest_suite.py:
# the only change to NEST's test suite is that `import nest` gives eprop_dist.
import sys

import eprop_dist

sys.modules["nest"] = eprop_dist
