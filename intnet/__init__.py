"""intnet: integer-valued neural networks trained exactly with mixed-integer programming.

    from intnet import IntegerNetworkClassifier, load

    model = IntegerNetworkClassifier(P=1, hidden=(4,), time_limit=5).fit(X, y)
    model.predict(X_test); model.save("model.parquet")
    load("model.parquet").predict(rows)

A thin facade over ``pipeline``: the estimator runs :func:`pipeline.training.train`, the same run
as ``intnet train`` and the Prefect flow, in this process (or on Ray actors with ``workers > 1``),
without Prefect and without writing any file unless asked. ``load`` reads a network file with
numpy and pyarrow alone; the estimator, which brings the MIP stack (Pyomo, HiGHS), is imported on
first use, so a program that only predicts does not pay for it.
"""

from pathlib import Path

from pipeline.networks.inference import LoadedModel, load_model

__all__ = ["IntegerNetworkClassifier", "load"]


def load(path: str | Path) -> LoadedModel:
    """A stored network file, ready to ``predict`` raw rows (a table, DataFrame or array with the
    training columns); its labels are the file's class names."""
    return load_model(path)


def __getattr__(name: str):
    if name == "IntegerNetworkClassifier":
        from intnet.estimator import IntegerNetworkClassifier

        return IntegerNetworkClassifier
    raise AttributeError(f"module 'intnet' has no attribute {name!r}")
