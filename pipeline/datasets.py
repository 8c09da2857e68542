"""Datasets as network-ready arrays: the three shipped with intnet and the user's own files.

Every dataset comes out the same way: features already transformed to [0, 1] on the
1e-4 grid by a fitted `Preprocessor` (kept with the dataset so a trained model can
transform raw rows later), and labels as indices into `classes`.
The preprocessing follows section 5 of the reference paper (Thorbjarnarson & Yorke-Smith 2023).
"""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipeline.errors import DataError, one_line
from pipeline.preprocessing import NumericColumn, Preprocessor, as_strings, sorted_categories

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


def load_builtin(name: str) -> Dataset:
    """Load one of `BUILTIN_DATASETS` from the files shipped in `pipeline/data`."""
    loaders = {"heart": _load_heart, "adult": _load_adult, "mnist": _load_mnist}
    if name not in loaders:
        raise DataError(f"unknown dataset '{name}'; choose one of {', '.join(BUILTIN_DATASETS)} or give a data file")
    return loaders[name]()


def load_file(path: str | Path, label: str) -> Dataset:
    """Load a user's CSV or Parquet file whose column `label` holds the class of each row.

    The preprocessing is fitted on every row: string columns are one-hot encoded, numeric ones scaled.
    """
    path = Path(path)
    table = read_table(path)
    if table.num_rows == 0:
        raise DataError(f"data file '{path}' has no data rows; add rows below the header")
    if label not in table.column_names:
        raise DataError(
            f"label column '{label}' is not in data file '{path}'; its columns are {', '.join(table.column_names)}"
        )
    features = table.drop_columns([label])
    if features.num_columns == 0:
        raise DataError(f"data file '{path}' has no feature columns besides the label '{label}'; add feature columns")
    if _file_kind(path) != ".parquet":
        _refuse_numbers_read_as_text(path, features)
    labels = label_strings(label, table.column(label))
    classes = sorted_categories(set(pc.unique(labels).to_pylist()))
    if len(classes) < 2:
        raise DataError(
            f"label column '{label}' of data file '{path}' has {len(classes)} class; a classifier needs at least 2"
        )
    preprocessor = Preprocessor.fit(features)
    return Dataset(
        name=path.name,
        x=preprocessor.transform(features),
        y=class_indices(labels, classes),
        classes=classes,
        preprocessor=preprocessor,
        label=label,
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


def _refuse_duplicate_columns(path: Path, names: list[str]) -> None:
    """Which of two same-named columns a name means would be arbitrary, for training and prediction
    alike, so a file with them is refused even when the model does not use that column."""
    name, count = Counter(names).most_common(1)[0] if names else ("", 0)
    if count > 1:
        raise DataError(f"data file '{path}' has {count} columns named '{name}'; rename or drop all but one")


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
