"""Mutation check of the bad-input suite (issue 21): one mutation per kind of bad input.

For each kind of tests/test_bad_input.py, one check of the validation layer is disabled by a
one-line replacement in a temporary copy of the committed tree (``git archive HEAD``); the kind's
parametrised cases and the suite's example tests then run there, and the table says which tests
failed and with what message. A mutation no test catches prints ``NOT CAUGHT``. The working tree
is never modified.

Usage (from the repository root, in the project's venv)::

    python benchmarks/bad_input_mutations.py               # every mutation, the kind's cases
    python benchmarks/bad_input_mutations.py --full        # the whole file for every mutation
    python benchmarks/bad_input_mutations.py masked units  # some kinds only
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = "tests/test_bad_input.py"
V, C, M = "sklearn_selfcal/_validation.py", "sklearn_selfcal/cleaning.py", "sklearn_selfcal/maps"

# kind, file, the line as it is (unique in the file), the line mutated, what the mutation does
MUTATIONS = [
    ("(none)", V, "", "", "baseline: the copy unmutated, every test must pass"),
    ("sentinel", C, "            bad[idx[hit]] = True", "            pass",
     "sentinel_mask finds no sentinel"),
    ("out_of_range", C, "    if ranges and role is not None and role.valid is not None:",
     "    if False:", "clean_values skips the role's physical range"),
    ("nan", V, "    if finite and np.isnan(out).any():", "    if False:",
     "clean_column: a `finite` column may hold NaN"),
    ("inf", V, "    infinite = np.isinf(out)", "    infinite = np.zeros(out.shape, bool)",
     "clean_column lets infinities through"),
    ("masked", C, "                if mask is not None:\n                    values[mask] = np.nan",
     "                if mask is not None:\n                    pass",
     "as_frame keeps the hidden value behind a float column's mask"),
    ("units", V, "    if kpc:\n", "    if False:\n", "clean_column skips the kpc-vs-pc check"),
    ("duplicate_column", V, "from None\n    check_unique([str(c) for c in frame.columns]",
     "from None\n    ([str(c) for c in frame.columns]", "check_table skips the duplicate-column check"),
    ("duplicate_index", V, "    if index and frame.index.has_duplicates:", "    if False:",
     "check_table skips the duplicate-index check"),
    ("string", V, "    if not_numbers.any():\n        raw =", "    if False:\n        raw =",
     "clean_column: text in a numeric column becomes a silent NaN"),
    ("empty", V, "    if len(frame) < min_rows:", "    if False:",
     "validate_catalogue skips the min_rows check"),
    ("one_row", f"{M}/comparison.py", "    if A.shape[0] < 2 or B.shape[0] < 2:",
     "    if False:", "compare_samples skips its 2-stars-per-sample check"),
]


def line_of(path, old):
    return path.read_text()[: path.read_text().index(old)].count("\n") + 1


def node_ids(root, kind, full):
    """The kind's parametrised cases and every example test (or the whole file with ``full``)."""
    if full or kind == "(none)":
        return [SUITE]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", SUITE], cwd=root, capture_output=True,
                         text=True).stdout
    ids = [line for line in out.splitlines() if line.startswith(SUITE + "::")]
    return [i for i in ids if "[" not in i or i.endswith(f"-{kind}]")]


# The ci profile's examples without shrinking (a failing mutant would be shrunk for minutes):
# registered by a conftest.py at the copy's root, loaded by the suite's HYPOTHESIS_PROFILE.
PROFILE = """from hypothesis import HealthCheck, Phase, settings
settings.register_profile("mutant", max_examples=20, deadline=None, derandomize=True,
                          database=None, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=list(HealthCheck))
"""


def run(root, ids):
    (root / "conftest.py").write_text(PROFILE)
    env = dict(os.environ, HYPOTHESIS_PROFILE="mutant", PYTHONPATH=str(root), COLUMNS="1000")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rf", "--tb=line", *ids], cwd=root, capture_output=True, text=True,
                          env=env)
    failed = re.findall(r"^FAILED (.+?)(?: - (.*))?$", proc.stdout, re.M)
    summary = (proc.stdout.strip().splitlines() or ["?"])[-1]
    return failed, summary


def main(argv):
    full = "--full" in argv
    kinds = [a for a in argv if not a.startswith("-")]
    repo = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                               text=True, check=True).stdout.strip())
    rows = []
    for kind, file, old, new, what in MUTATIONS:
        if kinds and kind not in kinds:
            continue
        with tempfile.TemporaryDirectory(prefix=f"mutant-{kind}-") as tmp:
            root = Path(tmp)
            archive = subprocess.run(["git", "archive", "HEAD"], cwd=repo, capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            path = root / file
            text = path.read_text()
            assert not old or text.count(old) == 1, f"{file}: {old!r} is not unique"
            where = f"{file}:{line_of(path, old)}"
            path.write_text(text.replace(old, new) if old else text)
            check = subprocess.run([sys.executable, "-c", "import sklearn_selfcal; "
                                    "print(sklearn_selfcal.__file__)"], cwd=root,
                                   capture_output=True, text=True).stdout
            assert check.startswith(tmp), f"the mutant is not the package imported: {check}"
            ids = node_ids(root, kind, full)
            failed, summary = run(root, ids)
        example = (failed[0][0].split("::", 1)[1] if failed else
                   "all pass" if kind == "(none)" else "NOT CAUGHT")
        message = (failed[0][1] or "") if failed else ""
        rows.append((kind, f"{where}: {what}", f"{len(failed)} ({example})",
                     message.replace("|", "\\|")[:160]))
        print(f"{kind}: {len(ids)} test(s) run, {summary}", file=sys.stderr, flush=True)
    print("| kind | mutation (file:line, what was changed) | failing tests (count, one example id)"
          " | message |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    caught = [r[0] == "(none)" or not r[2].startswith("0 ") for r in rows]
    clean = all(r[2].startswith("0 ") for r in rows if r[0] == "(none)")
    return 0 if all(caught) and clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
