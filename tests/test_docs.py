"""The documentation builds (API reference, method pages, examples run in fast mode)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_sphinx_build_with_examples(tmp_path):
    # the documentation tools are in the test extra: a missing one fails here, it is not skipped
    assert DOCS.is_dir(), "run the tests from a clone of the repository (docs/ is not packaged)"
    # autosummary writes into docs/generated (git-ignored): stubs of names that no longer exist
    # would be warnings, so every build starts from none
    shutil.rmtree(DOCS / "generated", ignore_errors=True)
    env = dict(os.environ, SKLEARN_SELFCAL_EXAMPLE_FAST="1", MPLBACKEND="Agg",
               SKLEARN_SELFCAL_EXAMPLE_OUT=str(tmp_path / "example_out"))
    # -W: a warning (broken reference, bad docstring markup) fails the build; the gallery aborts
    # on any example error. HTML and doctrees go to tmp_path; the generated sources
    # (docs/generated, docs/auto_examples) are git-ignored.
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    html = tmp_path / "html"
    assert (html / "index.html").is_file()
    assert (html / "method.html").is_file() and (html / "conventions.html").is_file()
    api = (html / "api.html").read_text()
    for name in ("SpectroPhotometricParallaxRegressor", "ActionTransformer", "NuisanceCalibrator",
                 "BrokenPowerLawRegressor"):
        assert name in api
    assert (html / "auto_examples" / "plot_full_pipeline.html").is_file()
    assert (html / "auto_examples" / "plot_paper_figures.html").is_file()
