"""intnet: integer-valued neural networks trained exactly with mixed-integer programming.

    from intnet import IntegerNetworkClassifier, load

    model = IntegerNetworkClassifier(P=1, hidden=(4,), time_limit=5).fit(X, y)
    model.predict(X_test); model.save("model.parquet")
    load("model.parquet").predict(rows)

A thin facade over ``pipeline``: the estimator runs :func:`pipeline.training.train`, the same run
as ``intnet train`` and the Prefect flow, in this process (or on Ray actors with ``workers > 1``),
without Prefect and without writing any file unless asked.
"""

from intnet.estimator import IntegerNetworkClassifier, load

__all__ = ["IntegerNetworkClassifier", "load"]
