"""numpydoc validation of the public API: every public name documents its parameters and returns.

Public names are those in the ``__all__`` of the package's public modules (no leading underscore),
and the public methods and properties of public classes. The checks that matter to a user reading
the reference are enforced; stylistic ones (a "See Also" everywhere, an "Examples" section on every
function) are not.
"""

import importlib
import inspect
import pkgutil

import pytest
from numpydoc.validate import validate

import sklearn_selfcal

#: numpydoc checks enforced: a docstring exists (GL08), parameters are documented, in order, with a
#: type and a description (PR01-PR04, PR06, PR07, PR10), returns are documented (RT01, RT03),
#: the summary is one capitalised line ending with a period (SS01-SS03).
CHECKS = {"GL08", "PR01", "PR02", "PR03", "PR04", "PR06", "PR07", "PR10", "RT01", "RT03",
          "SS01", "SS02", "SS03"}


def _public_names():
    names = set()
    for info in pkgutil.walk_packages(sklearn_selfcal.__path__, "sklearn_selfcal."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            home = getattr(obj, "__module__", "")
            if not home.startswith("sklearn_selfcal"):
                continue
            names.add(f"{home}.{obj.__qualname__}")
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if inspect.isfunction(value) or isinstance(value, property):
                        names.add(f"{home}.{obj.__qualname__}.{attr}")
    return sorted(names)


def test_the_public_api_is_found():
    names = _public_names()
    for expected in ("sklearn_selfcal.actions.ActionTransformer",
                     "sklearn_selfcal.workflow._run.run_method",
                     "sklearn_selfcal.columns.resolve_columns",
                     "sklearn_selfcal.figures.render_figures"):
        assert expected in names


@pytest.mark.parametrize("name", _public_names())
def test_numpydoc(name):
    result = validate(name)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in CHECKS]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def test_every_module_compiles_without_a_warning():
    """Invalid escape sequences and similar compile-time warnings are caught before a user sees them."""
    import pathlib
    import warnings

    root = pathlib.Path(sklearn_selfcal.__file__).parent
    for path in sorted(root.rglob("*.py")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(), str(path), "exec")
