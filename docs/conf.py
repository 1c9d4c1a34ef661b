"""Sphinx configuration for sklearn-selfcal."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sklearn_selfcal  # noqa: E402

project = "sklearn-selfcal"
author = "sklearn-selfcal developers"
release = version = sklearn_selfcal.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# scikit-learn's generated/inherited helpers document themselves in scikit-learn's docs (their
# docstrings point to its glossary, which this build cannot resolve)
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    "exclude-members": "set_fit_request, set_score_request, set_predict_request, "
                       "set_transform_request, set_partial_fit_request, get_metadata_routing, "
                       "set_output, set_params, get_params, score, fit_transform",
}
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_validation_checks = set()

# no intersphinx: the build must work without network access
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    # SKLEARN_SELFCAL_EXAMPLE_FAST=1 (set by the test suite) makes every example small and quick
    "run_stale_examples": True,
    "plot_gallery": os.environ.get("SKLEARN_SELFCAL_DOCS_PLOT", "True"),
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme" if os.environ.get("SKLEARN_SELFCAL_DOCS_THEME", "1") == "1" else "alabaster"
html_title = "sklearn-selfcal"
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
