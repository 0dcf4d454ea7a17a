import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "unit"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "invariance"))

# These tests compare whole-network results (recorder events, connections) on every rank with the
# serial ones, so they read with the documented collective scope; tests of NEST's local reads set
# read_scope="local" explicitly.
os.environ["EPROP_DIST_READ_SCOPE"] = "global"
