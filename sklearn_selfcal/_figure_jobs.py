"""The figures of :mod:`sklearn_selfcal.figures` drawn in worker processes: the job and its workers.

:func:`~sklearn_selfcal.figures.start_figures` queues the figures, the costliest first; worker
processes take them one at a time, each receiving only the columns its figure reads, and send the
PNG bytes and the warnings raised back; the caller draws what is left and writes the files.
:func:`start_workers` starts the workers ahead of the figures (their imports take about 2 s of a
core), e.g. while a run's first steps leave a core idle.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import warnings
from collections import deque
from dataclasses import replace
from pathlib import Path

from . import maps
from ._progress import progress
from .exceptions import FigureSkippedWarning

__all__ = ["start_workers"]  # public as sklearn_selfcal.figures.start_workers


def _executor(n_workers):
    """A private pool, shut down at write: loky's reusable executor is joblib's own, and one
    started here without joblib's set-up breaks every later Parallel of the process."""
    from joblib.externals.loky import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=n_workers)


def _warm_up():
    """Import what a worker draws with and load the fonts (a worker's first task)."""
    from matplotlib.figure import Figure

    from . import figures, plotting  # noqa: F401

    fig = Figure(figsize=(1.0, 1.0), layout="constrained")
    fig.add_subplot().set_xlabel(r"$x$ [kpc]")
    fig.savefig(io.BytesIO(), dpi=10, format="png")
    return os.getpid()


class _Workers:
    """Worker processes started by :func:`start_workers`."""

    def __init__(self, n_workers):
        self.n_workers = n_workers
        self.executor = _executor(n_workers)
        self.warm = [self.executor.submit(_warm_up) for _ in range(n_workers)]

    def close(self):
        """Stop the workers (figures that will not be drawn)."""
        self.executor.shutdown(wait=False, kill_workers=True)


def start_workers(n_jobs=-1):
    """Start the worker processes of :func:`~sklearn_selfcal.figures.start_figures` ahead.

    Their start (imports, fonts: about 2 s of a core each) then overlaps the caller's work before
    the figures can be drawn; pass the result as ``start_figures(..., workers=...)``, which stops
    them after the figures.

    Parameters
    ----------
    n_jobs : int or None, default=-1
        Processes drawing the figures, the caller's included (joblib's convention: -1 one per
        core); ``n_jobs - 1`` workers are started.

    Returns
    -------
    workers : object or None
        The workers, with ``close()`` to stop them unused; None when ``n_jobs`` means only the
        caller's process.
    """
    from joblib import effective_n_jobs

    n_workers = effective_n_jobs(n_jobs) - 1
    return _Workers(n_workers) if n_workers > 0 else None


#: Relative drawing cost of the figures (by their number): the costliest are sent to the workers
#: first, so that they finish together (at the paper's size the 20-panel maps of Figures 14-17 take
#: ~4x the time of a one-panel figure). Only the order of the work depends on it.
_COST = {"fig14": 5, "fig15": 5, "fig16": 5, "fig17": 5, "fig10": 3, "fig09": 2, "fig06": 2}


def _needed(spec, inputs):
    """``inputs`` with only the frame's columns that ``spec`` reads (what is sent to a worker)."""
    columns = list(dict.fromkeys(spec.columns(inputs)))
    return replace(inputs, frame=inputs.frame[columns])


def _module_of(filename, modules):
    """The dotted name of the module whose file is ``filename`` (None if none is loaded)."""
    for name, module in modules:
        if getattr(module, "__file__", None) == filename:
            return name
    return None


def _draw(name, nuisances, inputs, dpi):
    """Draw one figure: ``(png bytes or None, reason it was skipped or None, warnings raised)``.

    Runs in a worker. Every warning is recorded (whatever the worker's filters) with the module it
    was raised in, for :func:`_raise_again` to raise it again in the caller's process.
    """
    from .figures import figure_specs

    spec = next(s for s in figure_specs(nuisances) if s.name == name)
    png = reason = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fig = spec.make(inputs)
        except maps.TooFewStarsError as exc:
            reason = str(exc)
        else:
            png = _png(fig, dpi)
    modules = list(sys.modules.items())
    raised = [(w.category, str(w.message), w.filename, w.lineno, _module_of(w.filename, modules))
              for w in caught]  # text, not the warning object: anything pickles
    return png, reason, raised


def _png(fig, dpi):
    """The PNG bytes of ``fig.savefig(..., dpi=dpi, format="png")``, drawn once.

    ``savefig`` first draws the figure with a renderer that paints nothing, to lay it out, then
    draws it again; the canvas's own draw lays it out and paints in one pass (a fifth less CPU for
    the paper's figures), and the PNG is encoded as ``savefig`` encodes it: the same bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imsave

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    buffer = io.BytesIO()
    imsave(buffer, canvas.buffer_rgba(), format="png", origin="upper", dpi=fig.dpi)
    return buffer.getvalue()


def _raise_again(raised):
    """Raise the warnings recorded by :func:`_draw` here, as if from where they were raised."""
    for category, text, filename, lineno, module in raised:
        home = sys.modules.get(module) if module else None
        registry = vars(home).setdefault("__warningregistry__", {}) if home is not None else None
        warnings.warn_explicit(text, category, filename, lineno, module=module, registry=registry)



class _FigureJob:
    """The figures of :func:`start_figures` (same parameters), drawn by ``n_jobs`` processes.

    They wait in a queue, the costliest first. ``n_jobs - 1`` loky workers take them one at a time
    from the start, each receiving only the columns its figure reads; at :meth:`write` this process
    takes them too until the queue is empty, then waits for the workers. So it draws whatever the
    workers have not taken (all of them when they are slow to start or the machine is busy).
    Where a figure is drawn changes nothing in it.
    """

    def __init__(self, specs, inputs, nuisances, dpi, n_jobs, verbose, fit_later=False, workers=None):
        from joblib import effective_n_jobs

        self._specs, self._inputs, self._nuisances, self._dpi = specs, inputs, nuisances, dpi
        self._verbose = verbose
        # with fit_later, the figures of the profile or the fit wait for add_fit
        self._held = [s for s in specs if s.profile_columns is not None or s.needs_fit] if fit_later else []
        self._missing = {spec.name: spec.missing(inputs) for spec in specs if spec not in self._held}
        todo = [s for s in specs if self._missing.get(s.name, "held") is None]
        self._queue = deque(sorted(todo, key=lambda s: -_COST.get(s.name[:5], 1)))
        self._taken = {}  # figure name -> Future of a worker
        self._lock = threading.RLock()
        self._written = False
        if workers is not None:  # started ahead: n_jobs was theirs
            self._executor, n_workers = workers.executor, workers.n_workers
        else:
            n_workers = min(effective_n_jobs(n_jobs) - 1, len(todo) - 1)
            self._executor = _executor(n_workers) if n_workers > 0 else None
        for _ in range(n_workers if self._executor is not None else 0):
            self._send()

    def _next(self):
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _send(self, done=None):
        """Give a worker the next figure (the callback of the worker's previous one)."""
        if done is not None and (done.cancelled() or done.exception() is not None):
            return  # the error is raised by write(); the rest is drawn there
        with self._lock:  # taken and recorded at once: write() sees every figure a worker took
            spec = self._next()
            if spec is None:
                return
            future = self._executor.submit(_draw, spec.name, self._nuisances, _needed(spec, self._inputs),
                                           self._dpi)
            self._taken[spec.name] = future
        future.add_done_callback(self._send)

    def add_fit(self, profile, regressor, fit_column=None):
        """Give the held figures (``fit_later``) the radial profile, the fit and the fitted column,
        and queue those that can now be made (the others are skipped with their reason)."""
        with self._lock:
            changes = {"profile": profile, "regressor": regressor}
            if fit_column is not None:
                changes["fit_column"] = fit_column
            self._inputs = replace(self._inputs, **changes)
            for spec in self._held:  # cheap figures: queued last, as their cost orders them
                self._missing[spec.name] = spec.missing(self._inputs)
                if self._missing[spec.name] is None:
                    self._queue.append(spec)
            self._held = []

    def close(self):
        """Stop the workers at once (done, or a job that will not be written)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, kill_workers=True)

    def write(self, out_dir):
        """Draw the figures no worker took, wait for the others, write them into ``out_dir``.

        Returns the :class:`RenderedFigures` of :func:`render_figures` and raises the figures'
        warnings, in their order; a second call is a RuntimeError.
        """
        return self._write(out_dir, stacklevel=3)

    def _write(self, out_dir, stacklevel):
        from .figures import RenderedFigures
        from .io import atomic_write  # here, not in the workers: astropy stays out of them

        if self._written:
            raise RuntimeError("the figures of this job were already written")
        if self._held:
            raise RuntimeError("the figures of the profile and the fit wait for add_fit (fit_later)")
        self._written = True
        os.makedirs(out_dir, exist_ok=True)
        bar = progress(total=len(self._specs), desc="figures", verbose=self._verbose, unit="figure")
        drawn = {}
        while (spec := self._next()) is not None:
            drawn[spec.name] = _draw(spec.name, self._nuisances, self._inputs, self._dpi)
            bar.update()
        with self._lock:
            taken = dict(self._taken)
        try:
            for name, future in taken.items():
                drawn[name] = future.result()
                bar.update()
        finally:  # every figure is in: the workers are stopped, not left to tear down
            self.close()
        bar.close()
        rendered = RenderedFigures()
        for spec in self._specs:  # in the figures' order, wherever they were drawn
            png, reason, raised = drawn.get(spec.name, (None, self._missing[spec.name], []))
            _raise_again(raised)
            if reason is not None:
                warnings.warn(f"skipping figure {spec.name}: {reason}", FigureSkippedWarning,
                              stacklevel=stacklevel)
                rendered.skipped[spec.name] = reason
                continue
            path = os.path.join(os.fspath(out_dir), f"{spec.name}.png")
            with atomic_write(path) as tmp:
                Path(tmp).write_bytes(png)
            rendered[spec.name] = path
        return rendered
