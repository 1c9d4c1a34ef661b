"""The output directory of a run: locked, written privately, moved into place at the end.

A run writes every file into a private temporary directory next to ``--out`` (same file system),
and only when everything is written renames it onto ``--out``: an interrupted run leaves the previous
results untouched, and a finished run never leaves a stale file of an earlier run beside its own
(with ``--overwrite`` the previous directory is replaced as a whole). A lock file next to ``--out``
refuses a second concurrent run on the same directory (POSIX ``flock``: released by the kernel if
the process dies); it is removed when the run ends. Temporary directories of interrupted runs are
removed by the next run on the same ``--out``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

try:  # POSIX advisory locks; released by the kernel when the process ends, even on a crash
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["OutputDirectory", "OutputLockedError"]


class OutputLockedError(RuntimeError):
    """Another run holds the lock of the output directory."""


class OutputDirectory:
    """Context manager for the output directory of one run.

    Parameters
    ----------
    path : str or path-like
        The final output directory (``--out``).
    overwrite : bool, default=False
        Replace an existing non-empty directory (as a whole, when the run succeeds).

    Attributes
    ----------
    path : pathlib.Path
        The final directory.
    tmp : pathlib.Path
        The private directory the run writes into (inside ``path``'s parent), set on entry.

    Raises
    ------
    OutputLockedError
        On entry, if another run on the same ``path`` is in progress.
    FileExistsError
        On entry, if ``path`` is a non-empty directory and ``overwrite`` is False.
    NotADirectoryError
        On entry, if ``path`` exists and is not a directory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputDirectory(root / "results") as tmp:
    ...     _ = (tmp / "table.txt").write_text("done")
    >>> sorted(p.name for p in (root / "results").iterdir())
    ['table.txt']
    """

    def __init__(self, path, overwrite=False):
        self.path = Path(path).absolute()
        self.overwrite = overwrite
        self.tmp = None
        self._lock = None

    @property
    def _prefix(self):
        return f".{self.path.name}.sklearn-selfcal"

    def check(self):
        """Raise now if the directory could not be written (lock held, non-empty, not a directory).

        The ``run`` command calls it before any computation; the checks are repeated on entry
        (where the lock is then taken, not tested).
        """
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} exists and is not a directory")
        if self.path.is_dir() and any(self.path.iterdir()) and not self.overwrite:
            raise FileExistsError(f"output directory {self.path} is not empty; pass --overwrite to "
                                  "replace it with this run's results")
        lock = self.path.parent / f"{self._prefix}.lock"
        if self._lock is None and lock.exists() and fcntl is not None:
            with open(lock, "a+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._locked_error(lock) from None
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _locked_error(self, lock):
        return OutputLockedError(f"another sklearn-selfcal run is writing {self.path} (lock file "
                                 f"{lock}); wait for it to finish or choose another --out")

    def __enter__(self):
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        lock = parent / f"{self._prefix}.lock"
        self._lock = open(lock, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.close()
                self._lock = None
                raise self._locked_error(lock) from None
        try:
            self.check()
            for stale in parent.glob(f"{self._prefix}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            for stale in parent.glob(f"{self._prefix}.old-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self.tmp = parent / f"{self._prefix}.tmp-{secrets.token_hex(6)}"
            self.tmp.mkdir()
        except BaseException:
            self._release()
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                return False
            if self.path.exists():
                old = self.path.parent / f"{self._prefix}.old-{secrets.token_hex(6)}"
                os.replace(self.path, old)
                os.replace(self.tmp, self.path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(self.tmp, self.path)
            return False
        finally:
            self._release()

    def _release(self):
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.remove(self._lock.name)  # while still holding it: nothing is left behind
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()
            self._lock = None
