"""numpy's BLAS threads, capped for the run's own matrix work.

The run's matrices are small (a hidden layer of 16 over a hundred inputs; the sparse start's cross
products over a few dozen columns), so a second BLAS thread gains little on an idle machine and
costs much on a busy one: OpenBLAS's threads spin waiting for each other, and a thread that has
lost its core stalls every product. Measured on 2 cores with a CPU hog beside the run
(benchmarks/blas_threads.py, docs/results/blas_threads.md), and in issue 26 on a busy machine: the
gradient start 20-40 times slower with OpenBLAS's default threads than with one. The cap is
threadpoolctl's, which finds the BLAS numpy loaded (OpenBLAS, MKL, BLIS) whatever it is; the
environment variables (OPENBLAS_NUM_THREADS) act only before numpy is imported, which a library
cannot promise. HiGHS's threads are its own (``--threads``), untouched."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from threadpoolctl import threadpool_limits

BLAS_THREADS = 1
"""BLAS threads of the run's numpy work: one, as measured above (the solver's threads are
``--threads``; batches run in parallel on Ray's workers, not in BLAS)."""

F = TypeVar("F", bound=Callable)


def capped_blas():
    """A context in which numpy's BLAS uses :data:`BLAS_THREADS` threads (restored on leaving)."""
    return threadpool_limits(limits=BLAS_THREADS, user_api="blas")


def with_capped_blas(function: F) -> F:
    """``function`` run under :func:`capped_blas`; the uncapped one stays ``function.__wrapped__``
    (which the benchmark measures against)."""

    @functools.wraps(function)
    def capped(*args, **kwargs):
        with capped_blas():
            return function(*args, **kwargs)

    return capped  # type: ignore[return-value]
