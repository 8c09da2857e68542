"""Datasets as network-ready arrays: the three shipped with intnet and the user's own files.

Every dataset comes out the same way: features already transformed to [0, 1] on the
1e-4 grid by a fitted `Preprocessor` (kept with the dataset so a trained model can
transform raw rows later), and labels as indices into `classes`.
The preprocessing is docs/method.md §9.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipeline.data.preprocessing import (
    MISSING_CATEGORY,
    CategoricalColumn,
    NumericColumn,
    Preprocessor,
    as_strings,
    is_numeric_type,
    sorted_categories,
)
from pipeline.errors import DataConversionWarning, DataError, one_line

BUILTIN_DATASETS = ("heart", "adult", "mnist")

FILE_KINDS = (".csv", ".csv.gz", ".parquet")

# A decimal number as arrow's CSV reader infers one (it reads "NaN", "NA" and "" as missing).
NUMBER_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

HEART_CATEGORICAL = ("cp", "slope", "thal")

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
)  # fmt: skip
ADULT_NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
ADULT_CLASSES = ("<=50K", ">50K")

MAX_CLASSES = 100
"""Most classes a label may have. Every class adds an output neuron, and with it a product per
example and hidden neuron and a rival per example to each batch MIP: measured on 720 examples with
16 hidden neurons (2 shared cores), building max_correct's model took 12 s for 10 classes and 116 s for 100 (1.15
million products), and a 1,000-class label took 2 min 16 s and 4.4 GB before any solve (issue 26).
So many classes usually mean the wrong column (a measurement, an identifier) named as the label."""
TOO_MANY_CLASSES = f"a MIP trains at most {MAX_CLASSES} (each class is an output neuron in every batch MIP)"

MNIST_PIXELS = 784
MNIST_MAX_INTENSITY = 255.0


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features, labels and the preprocessing that produced the features.

    `eq=False` because the fields are arrays: two datasets are the same only if they are the same object.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    preprocessor: Preprocessor
    label: str
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    validation_fraction: float = 0.1
    attributes: pa.Table | None = None
    """The raw columns of the rows of ``x`` (all but the label, excluded ones too): what defines the
    groups of a fairness constraint (``--fair``) and the columns a monotonicity constraint names."""
    test_attributes: pa.Table | None = None
    """The same for the rows of ``test_x``."""
    weights: np.ndarray | None = None
    """How much each row of ``x`` counts in training (the estimator's ``sample_weight``; positive;
    class weights multiply it on the split, :func:`pipeline.training.class_weighted`): every MIP
    objective and the gradient start count a row that many times. None: one each."""


def without_rows(dataset: Dataset) -> Dataset:
    """``dataset``'s classes, label and preprocessing (what raw rows and a network file need)
    without its rows: what a fitted estimator keeps, so that it does not carry its training set
    (pickled, a 1 KB network carried 846 KB of it, issue 26)."""
    return replace(dataset, x=np.empty((0, dataset.x.shape[1]), dataset.x.dtype), y=np.empty(0, dataset.y.dtype),
                   test_x=None, test_y=None, attributes=None, test_attributes=None, weights=None)


def without_columns(dataset: Dataset, exclude: Sequence[str]) -> Dataset:
    """``dataset`` with the columns ``exclude`` kept out of its features (``--exclude``): the
    preprocessing fitted again on the other columns, each of the kind it had, on the rows it was
    fitted on (the official test rows too, as Adult's; a user's test file is added after this);
    the columns stay in ``attributes``, so that one may still define groups."""
    if not exclude:
        return dataset
    names = dataset.attributes.column_names if dataset.attributes is not None else []
    unknown = [name for name in exclude if name not in names]
    if unknown:
        raise DataError(f"--exclude {unknown[0]}: {dataset.name} has no column '{unknown[0]}'; its columns are "
                        f"{', '.join(names)}")
    kept = [column for column in dataset.preprocessor.columns if column.name not in exclude]
    if not kept:
        raise DataError(f"--exclude leaves {dataset.name} no feature column; keep at least one")
    categorical = [column.name for column in kept if isinstance(column, CategoricalColumn)]
    features = dataset.attributes.drop_columns(list(exclude))
    fitted_on = features
    if dataset.test_attributes is not None:
        fitted_on = pa.concat_tables([features, dataset.test_attributes.drop_columns(list(exclude))])
    preprocessor = Preprocessor.fit(fitted_on.select([column.name for column in kept]), categorical=categorical)
    test_x = None if dataset.test_x is None else preprocessor.transform(dataset.test_attributes)
    return replace(dataset, x=preprocessor.transform(features), preprocessor=preprocessor, test_x=test_x)


def load_builtin(name: str) -> Dataset:
    """Load one of `BUILTIN_DATASETS` from the files shipped in `pipeline/data`."""
    loaders = {"heart": _load_heart, "adult": _load_adult, "mnist": _load_mnist}
    if name not in loaders:
        raise DataError(f"unknown dataset '{name}'; choose one of {', '.join(BUILTIN_DATASETS)} or give a data file")
    return loaders[name]()


def load_file(path: str | Path, label: str, exclude: Sequence[str] = ()) -> Dataset:
    """Load a user's CSV or Parquet file whose column `label` holds the class of each row; the
    columns `exclude` are no features (``--exclude``).

    The preprocessing is fitted on every row: string columns are one-hot encoded, numeric ones scaled.
    """
    path = Path(path)
    table = read_table(path)
    refuse_no_rows(path, table)
    if label not in table.column_names:
        raise DataError(
            f"label column '{label}' is not in data file '{path}'; its columns are {', '.join(table.column_names)}"
        )
    for name in exclude:
        if name not in table.column_names:
            raise DataError(f"--exclude {name}: data file '{path}' has no column '{name}'; its columns are "
                            f"{', '.join(table.column_names)}")
        if name == label:
            raise DataError(f"--exclude {name}: '{name}' is the label (--label), not a feature")
    features = table.drop_columns([label, *exclude])
    if features.num_columns == 0 and exclude:
        raise DataError(f"--exclude leaves data file '{path}' no feature column; keep at least one")
    if features.num_columns == 0:
        raise DataError(f"data file '{path}' has no feature columns besides the label '{label}'; add feature columns")
    if _file_kind(path) != ".parquet":
        _refuse_numbers_read_as_text(path, features)
    _refuse_identifiers(path, features)
    labels = label_strings(label, table.column(label))
    classes = sorted_categories(set(pc.unique(labels).to_pylist()))
    if len(classes) < 2:
        raise DataError(
            f"label column '{label}' of data file '{path}' has {len(classes)} class; a classifier needs at least 2"
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(f"label column '{label}' of data file '{path}' has {len(classes)} classes; {TOO_MANY_CLASSES}; "
                        f"check that '{label}' is the label")
    preprocessor = Preprocessor.fit(features)
    return Dataset(
        name=path.name,
        x=preprocessor.transform(features),
        y=class_indices(labels, classes),
        classes=classes,
        preprocessor=preprocessor,
        label=label,
        attributes=table.drop_columns([label]),
    )


def read_table(path: str | Path) -> pa.Table:
    """Read a .csv, .csv.gz or .parquet file with a header row into an arrow table.

    Shared by training (`load_file`) and prediction on raw rows, so both see the same column types.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist; check the path")
    kind = _file_kind(path)
    if path.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty; give a file with a header row and data rows")
    try:
        if kind == ".parquet":
            _refuse_duplicate_columns(path, pq.read_schema(path).names)  # reading would fail, unclearly
            table = pq.read_table(path)
        else:
            table = pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(
            f"cannot read data file '{path}' as {kind} ({one_line(error)}); check that it is a valid {kind} file"
        ) from None
    names = [name.lstrip("\ufeff") for name in table.column_names]
    _refuse_duplicate_columns(path, names)
    return table.rename_columns(names)


def refuse_no_rows(path: str | Path, table: pa.Table) -> None:
    """A labelled file must have rows: there is nothing to train on or to score."""
    if table.num_rows == 0:
        raise DataError(f"data file '{path}' has no data rows; add rows below the header")


def _refuse_duplicate_columns(path: Path, names: list[str]) -> None:
    """Which of two same-named columns a name means would be arbitrary, for training and prediction
    alike, so a file with them is refused even when the model does not use that column."""
    name, count = Counter(names).most_common(1)[0] if names else ("", 0)
    if count > 1:
        raise DataError(f"data file '{path}' has {count} columns named '{name}'; rename or drop all but one")


MIN_IDENTIFIER_ROWS = 20
"""Fewest rows on which a one-hot column whose every value differs is refused as an identifier.
Such a column's inputs are each 1 on a single row, which no other row matches, however many rows
there are: they name rows, never generalise, and widen every MIP (issue 26: a 15-input file with a row
identifier became 148 inputs). Below this many rows the inputs are few, and a small table of
distinct codes (a toy, a test) is left alone."""


def _refuse_identifiers(path: Path, features: pa.Table) -> None:
    """A text column with a different value on every row (a name, an id) is refused as a feature:
    one-hot encoding it would add one input per row (:data:`MIN_IDENTIFIER_ROWS`)."""
    rows = features.num_rows
    if rows < MIN_IDENTIFIER_ROWS:
        return
    for name in features.column_names:
        values = features.column(name)
        if is_numeric_type(values.type):
            continue  # scaled: one input, whatever its values
        texts = pc.fill_null(as_strings(name, values), MISSING_CATEGORY)
        if pc.count_distinct(texts).as_py() == rows:
            raise DataError(
                f"column '{name}' of data file '{path}' has a different value on each of its {rows} rows, like an "
                f"identifier: one-hot encoded it would be {rows} inputs, each naming one row; leave it out of the "
                f"features with --exclude {name}"
            )


def _refuse_numbers_read_as_text(path: Path, features: pa.Table) -> None:
    """A CSV column that holds numbers but for a few values (a typo such as "4O" for 40) is read as
    text, and one-hot encoding it would silently make every number its own category."""
    for name in features.column_names:
        values = features.column(name)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        present = pc.filter(values, pc.not_equal(values, ""))  # also drops nulls
        is_number = pc.match_substring_regex(present, NUMBER_TEXT)
        numbers = pc.sum(is_number).as_py() or 0
        if len(present) / 2 < numbers < len(present):
            text = pc.filter(present, pc.invert(is_number))[0].as_py()
            row = pc.index(values, text).as_py() + 1
            raise DataError(
                f"column '{name}' of data file '{path}' holds numbers but {len(present) - numbers} value(s) that are "
                f"not, such as '{text}' in row {row}; fix them, or if '{name}' is categorical give the data as "
                f"Parquet with '{name}' a string column"
            )


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    for kind in FILE_KINDS:
        if name.endswith(kind):
            return kind
    raise DataError(f"data file '{path}' has an unknown extension; use one of {', '.join(FILE_KINDS)}")


def label_strings(label: str, values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Labels as strings; a null or empty label is missing, which a training row cannot be."""
    texts = as_strings(label, values)
    missing = texts.null_count + pc.sum(pc.equal(texts, "")).as_py()
    if missing:
        raise DataError(f"label column '{label}' has {missing} missing values; fill or drop those rows")
    return texts


def class_indices(labels: pa.ChunkedArray, classes: tuple[str, ...]) -> np.ndarray:
    """Index of each label in `classes`; every label must be one of them."""
    indices = pc.index_in(labels, value_set=pa.array(classes, type=pa.string()))
    if indices.null_count:
        unknown = pc.filter(labels, pc.is_null(indices))[0].as_py()
        raise DataError(f"label '{unknown}' is not one of the classes {', '.join(classes)}; fix the label column")
    return indices.to_numpy().astype(np.int64)


def _shipped_file(filename: str) -> AbstractContextManager[Path]:
    """A real filesystem path to a data file shipped in the package, valid inside the `with` block."""
    return resources.as_file(resources.files("pipeline") / "data" / filename)


def _load_heart() -> Dataset:
    """Heart (Cleveland, 303 rows): cp, slope, thal one-hot -> 21 features; scaling fitted on all rows."""
    with _shipped_file("heart.csv.gz") as path:
        table = read_table(path)
    label = "target"
    features = table.drop_columns([label])
    preprocessor = Preprocessor.fit(features, categorical=HEART_CATEGORICAL)
    classes = ("0", "1")
    return Dataset(
        name="heart",
        x=preprocessor.transform(features),
        y=class_indices(label_strings(label, table.column(label)), classes),
        classes=classes,
        preprocessor=preprocessor,
        label=label,
        validation_fraction=0.1,
        attributes=features,
    )


def _load_adult() -> Dataset:
    """Adult (UCI census income): 108 features; scaling fitted on the official train and test rows together."""
    with _shipped_file("adult.data.gz") as train_path, _shipped_file("adult.test.gz") as test_path:
        train = read_adult_file(train_path)
        test = read_adult_file(test_path)
    label = "income"
    categorical = [name for name in ADULT_COLUMNS if name not in ADULT_NUMERIC and name != label]
    preprocessor = Preprocessor.fit(pa.concat_tables([train, test]).drop_columns([label]), categorical=categorical)
    return Dataset(
        name="adult",
        x=preprocessor.transform(train),
        y=class_indices(train.column(label), ADULT_CLASSES),
        classes=ADULT_CLASSES,
        preprocessor=preprocessor,
        label=label,
        test_x=preprocessor.transform(test),
        test_y=class_indices(test.column(label), ADULT_CLASSES),
        validation_fraction=0.2,
        attributes=train.drop_columns([label]),
        test_attributes=test.drop_columns([label]),
    )


def read_adult_file(path: Path) -> pa.Table:
    """Read one Adult file: no header, a space after each comma, "?" for missing, test labels ending in ".".

    Lines that do not have the 15 fields of a data row (such as the "|1x3 Cross validator" line that
    starts some copies of adult.test) are skipped; every data row is kept.
    """
    column_types = {name: pa.int64() if name in ADULT_NUMERIC else pa.string() for name in ADULT_COLUMNS}
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=list(ADULT_COLUMNS)),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        convert_options=pa_csv.ConvertOptions(column_types=column_types),
    )
    for name in ADULT_COLUMNS:
        if name not in ADULT_NUMERIC:
            table = table.set_column(
                table.schema.get_field_index(name), name, pc.utf8_trim_whitespace(table.column(name))
            )
    income = pc.replace_substring_regex(table.column("income"), pattern=r"\.$", replacement="")
    return table.set_column(table.schema.get_field_index("income"), "income", income)


def _load_mnist() -> Dataset:
    """MNIST 5k subset: pixel/255 for each of the 784 pixels (a fixed range, not the observed one)."""
    pixel_names = [f"pixel{i}" for i in range(MNIST_PIXELS)]
    label = "label"
    with _shipped_file("mnist_5k.csv.gz") as path:
        table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(column_names=[*pixel_names, label]))
    preprocessor = Preprocessor(
        columns=tuple(NumericColumn(name=name, low=0.0, high=MNIST_MAX_INTENSITY) for name in pixel_names)
    )
    classes = tuple(str(digit) for digit in range(10))
    return Dataset(
        name="mnist",
        x=preprocessor.transform(table),
        y=class_indices(label_strings(label, table.column(label)), classes),
        classes=classes,
        preprocessor=preprocessor,
        label=label,
        validation_fraction=0.1,
    )


def with_test_file(dataset: Dataset, path: str | Path) -> Dataset:
    """`dataset` with the rows of the user's own test file as its test set, transformed by the
    preprocessing fitted on the training data (a user's split is respected, not re-drawn)."""
    if dataset.test_x is not None:
        raise DataError(f"{dataset.name} has a test set of its own; --test-data goes with --data")
    table = read_table(path)
    if dataset.label not in table.column_names:
        raise DataError(f"label column '{dataset.label}' is not in test file '{path}'; "
                        f"its columns are {', '.join(table.column_names)}")
    if table.num_rows == 0:
        raise DataError(f"test file '{path}' has no data rows; add rows below the header")
    labels = label_strings(dataset.label, table.column(dataset.label))
    return replace(dataset, test_x=dataset.preprocessor.transform(table), test_y=class_indices(labels, dataset.classes),
                   test_attributes=table.drop_columns([dataset.label]))


def dataset_from_arrays(x, y, name: str = "arrays", label: str = "label") -> tuple[Dataset, np.ndarray]:
    """A dataset from in-memory data: ``x`` a 2-D numeric array (columns ``x0``, ``x1``, ...), a
    pyarrow table or a pandas DataFrame (string columns one-hot encoded, numeric ones scaled, as a
    file's), and ``y`` the labels. Returns the dataset and the labels' distinct values in class
    order (``classes`` holds them as strings, as the network file does). Messages follow
    scikit-learn's wording where it has one, as users of an estimator know it."""
    table = feature_table(x)
    values = class_labels(y, table.num_rows)
    distinct, indices = np.unique(values, return_inverse=True)
    if len(distinct) < 2:
        raise DataError(f"y has {len(distinct)} class; a classifier needs at least 2")
    if len(distinct) > MAX_CLASSES:
        raise DataError(f"y has {len(distinct)} classes; {TOO_MANY_CLASSES}")
    classes = tuple(str(value) for value in distinct)
    if len(set(classes)) < len(classes):
        raise DataError("two labels of y read the same as text; give labels that differ as strings")
    preprocessor = Preprocessor.fit(table)
    dataset = Dataset(name=name, x=preprocessor.transform(table), y=indices.astype(np.int64), classes=classes,
                      preprocessor=preprocessor, label=label, attributes=table)
    return dataset, distinct


def class_labels(y, n_rows: int) -> np.ndarray:
    """``y`` as one class label per row: a column vector is flattened (with a warning), a
    continuous target is refused."""
    if y is None:
        raise DataError("this classifier requires y to be passed, but the target y is None")
    values = np.asarray(y)
    if values.ndim == 2 and values.shape[1] == 1:
        warnings.warn(DataConversionWarning("A column-vector y was passed when a 1d array was expected; "
                                            "it is read as y.ravel()"), stacklevel=3)
        values = values.ravel()
    if values.ndim != 1 or len(values) != n_rows:
        raise DataError(f"y must be one label per row of X: X has {n_rows} rows, y has shape {values.shape}")
    if values.dtype.kind in "fc":
        if not np.all(np.isfinite(values)):
            raise DataError("y has missing or infinite labels; drop those rows")
        if not np.all(values == np.round(values)):
            raise DataError("Unknown label type: continuous values in y; a classifier needs class labels")
    return values


def feature_table(x, columns: Sequence[str] | None = None) -> pa.Table:
    """In-memory rows as a table the preprocessing reads; a 2-D numeric array's columns are named
    ``columns``, by default ``x0``, ``x1``, ... (as :func:`dataset_from_arrays` names them)."""
    if isinstance(x, pa.Table):
        table = x
    elif hasattr(x, "columns") and hasattr(x, "dtypes"):  # a pandas DataFrame, without importing pandas
        table = pa.Table.from_pandas(x, preserve_index=False)
    elif hasattr(x, "tocsr") or hasattr(x, "toarray"):  # scipy.sparse, without importing scipy
        raise TypeError("sparse input is not supported; pass a dense array (X.toarray())")
    else:
        table = _array_table(x, columns)
    return table.rename_columns([str(name) for name in table.column_names])


def _array_table(x, columns: Sequence[str] | None) -> pa.Table:
    array = np.asarray(x)
    if array.dtype.kind == "c":
        raise DataError("Complex data not supported; X must be real numbers")
    try:
        array = array.astype(np.float64)  # a TypeError (a dict in X, say) says what it met
    except ValueError:
        raise DataError("X must be numeric: a 2-D array of numbers, a pyarrow table or a DataFrame") from None
    if array.ndim != 2:
        raise DataError(f"Expected a 2-D array, got shape {array.shape}. Reshape your data either using "
                        "array.reshape(-1, 1) if it has a single feature or array.reshape(1, -1) if it "
                        "contains a single sample.")
    if array.shape[1] == 0:
        raise DataError(f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    if array.shape[0] == 0:
        raise DataError(f"Found array with 0 sample(s) (shape={array.shape}) while a minimum of 1 is required.")
    if not np.all(np.isfinite(array)):
        raise DataError("X has missing (NaN) or infinite values; fill or drop them first")
    names = list(columns) if columns is not None else [f"x{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise DataError(f"X has {array.shape[1]} features, but the network is expecting {len(names)} features as input")
    return pa.table({name: array[:, i] for i, name in enumerate(names)})
