"""``python -m sklearn_selfcal``: the command line (as the ``sklearn-selfcal`` console script)."""

from .cli import script

if __name__ == "__main__":
    script()
