"""The kernels' tests mirror sklearn_selfcal/_kernels/: every kernel module (and every module of
a kernel subpackage, e.g. ``explinear_l1.solver``) is imported by a tests/test_kernels_*.py file,
and every such file is named for the kernel module(s) it tests (``test_kernels_explinear_l1_solver``
for ``explinear_l1.solver``)."""

import ast
import importlib
from pathlib import Path
import pkgutil

from sklearn_selfcal import _kernels

TESTS = Path(__file__).parent
PACKAGE = _kernels.__name__


def kernel_modules():
    """Names of the modules of sklearn_selfcal._kernels, a subpackage's as ``package.module``."""
    names = set()
    for info in pkgutil.iter_modules(_kernels.__path__):
        names.add(info.name)
        if info.ispkg:
            sub = importlib.import_module(f"{PACKAGE}.{info.name}")
            names.update(f"{info.name}.{m.name}" for m in pkgutil.iter_modules(sub.__path__))
    return names


def _with_parents(dotted):
    """``"a.b.c"`` -> ``{"a", "a.b", "a.b.c"}``."""
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def imported_kernels(path):
    """Kernel modules a file imports: ``from <_kernels> import m``, ``from <_kernels>.m import x``,
    ``from <_kernels>.m.s import x``, ``import <_kernels>.m`` (anywhere in the file, functions
    included); ``from <_kernels>.m import s`` counts ``m.s`` when ``s`` is a module of ``m``."""
    modules = kernel_modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                rest = node.module[len(PACKAGE) + 1:]
                found |= _with_parents(rest)
                found.update(f"{rest}.{a.name}" for a in node.names
                             if f"{rest}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found |= _with_parents(alias.name[len(PACKAGE) + 1:])
    return found


def split_names(stem, modules):
    """``stem`` read as module names joined by ``_`` (e.g. ``"bspline_categorical"``, or
    ``"explinear_l1_solver"`` for ``explinear_l1.solver``), or None."""
    flat = {name.replace(".", "_"): name for name in modules}
    if stem in flat:
        return [flat[stem]]
    for key, name in flat.items():
        if stem.startswith(key + "_"):
            rest = split_names(stem[len(key) + 1:], modules)
            if rest is not None:
                return [name, *rest]
    return None


def kernel_test_files():
    """The kernels' test files (this one apart)."""
    return sorted(p for p in TESTS.glob("test_kernels_*.py") if p.name != Path(__file__).name)


def test_every_kernel_module_is_imported_by_a_kernel_test():
    modules = kernel_modules()
    assert {"binned", "explinear_l1", "staeckel"} <= modules  # the listing works at all
    imported = set().union(*(imported_kernels(p) for p in kernel_test_files()))
    missing = sorted(modules - imported)
    assert not missing, (f"kernel modules that no tests/test_kernels_*.py imports: {missing}; "
                         "test their plain functions in tests/test_kernels_<module>.py")


def test_every_kernel_test_file_is_named_for_the_modules_it_tests():
    modules = kernel_modules()
    for path in kernel_test_files():
        names = split_names(path.stem.removeprefix("test_kernels_"), modules)
        assert names is not None, f"{path.name} is not named for modules of {PACKAGE}"
        assert set(names) <= imported_kernels(path), f"{path.name} does not import {names}"
