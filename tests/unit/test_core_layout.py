"""The compiled core's layout matches its documentation: every kernel module under csrc/eprop_dist/ has
a .pxd, is built by setup.py and is described in docs/architecture.md; the driver holds one state
object per kernel, and the functions the architecture page names as the owners of a window's steps
exist."""
import ast
import importlib
import os
import re

import eprop_dist._driver as driver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc", "eprop_dist")


def _setup_kernels():
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "KERNELS" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py defines no KERNELS tuple")


def test_every_kernel_module_is_built_declared_and_documented():
    modules = sorted(f[:-4] for f in os.listdir(CSRC) if f.endswith(".pyx"))
    assert len(modules) >= 10
    assert sorted(_setup_kernels()) == modules
    doc = open(os.path.join(ROOT, "docs", "architecture.md")).read()
    for m in modules:
        assert os.path.exists(os.path.join(CSRC, m + ".pxd")), f"{m}.pyx has no .pxd"
        assert m in doc, f"docs/architecture.md does not describe {m}"
        importlib.import_module("eprop_dist." + m)       # built and importable


def test_kernels_import_in_setup_order():
    """A module is listed in setup.py after every kernel module it cimports."""
    order = _setup_kernels()
    for i, m in enumerate(order):
        src = open(os.path.join(CSRC, m + ".pyx")).read() + open(os.path.join(CSRC, m + ".pxd")).read()
        for dep in set(re.findall(r"from eprop_dist\.(_\w+) cimport", src)):
            assert dep in order[:i], f"{m} cimports {dep}, listed after it in setup.py KERNELS"


def test_driver_holds_one_object_per_kernel_and_links_them():
    c = driver.Core()
    k = c.kernels
    assert set(k) == {"rec", "out", "parrots", "history", "optimizer", "syn", "bsshslm_syn", "delivery",
                      "generators", "recording"}
    assert len({id(v) for v in k.values()}) == len(k)
    assert c.syn.history is c.history and c.syn.optimizer is c.optimizer
    assert c.bsshslm_syn.syn is c.syn and c.delivery.recording is c.recording
    assert c.delivery.generators is c.generators and c.delivery.bsshslm_syn is c.bsshslm_syn


def test_architecture_page_names_existing_owners():
    doc = open(os.path.join(ROOT, "docs", "architecture.md")).read()
    src = {f: open(os.path.join(CSRC, f)).read() for f in os.listdir(CSRC) if f.endswith((".pyx", ".pxd"))}
    allsrc = "\n".join(src.values())
    names = set(re.findall(r"`(?:Core|Delivery|History|Recording|EpropSynapses|BsshslmSynapses)\.(\w+)`", doc))
    names |= set(re.findall(r"`(step_\w+)`", doc))
    assert len(names) >= 10
    for n in names:
        defined = re.search(r"\b(def|cdef [\w ]*?)\s*" + n + r"\(", allsrc) \
            or re.search(r"cdef public [^\n]*\b" + n + r"\b", allsrc)
        assert defined, f"docs/architecture.md names {n}, which the core does not define"
