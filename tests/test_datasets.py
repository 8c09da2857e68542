"""Built-in datasets (shapes, classes, scaling) and loading users' CSV and Parquet files."""

import gzip
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from pipeline.data.datasets import BUILTIN_DATASETS, load_builtin, load_file, read_adult_file, read_table
from pipeline.errors import DataError

ADULT_TRAIN_ROWS = 32_561
ADULT_TEST_ROWS = 16_281


@pytest.fixture(scope="module")
def heart():
    return load_builtin("heart")


@pytest.fixture(scope="module")
def adult():
    return load_builtin("adult")


@pytest.fixture(scope="module")
def mnist():
    return load_builtin("mnist")


def shipped_lines(filename: str) -> list[str]:
    with (resources.files("pipeline") / "data" / filename).open("rb") as raw:
        return gzip.decompress(raw.read()).decode("utf-8").splitlines()


def adult_rows(filename: str) -> list[str]:
    """The lines of a shipped Adult file that are data rows (15 comma-separated fields)."""
    return [line for line in shipped_lines(filename) if line.count(",") == 14]


def assert_on_unit_grid(x: np.ndarray) -> None:
    assert x.dtype == np.float64
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, np.round(x * 10_000) / 10_000)


def test_heart_has_21_features_and_its_class_counts(heart):
    assert heart.x.shape == (303, 21)
    assert heart.classes == ("0", "1")
    assert np.bincount(heart.y).tolist() == [138, 165]
    assert heart.test_x is None and heart.test_y is None
    assert heart.label == "target" and heart.validation_fraction == 0.1
    assert heart.preprocessor.feature_names[0] == "age"
    one_hot = [name for name in heart.preprocessor.feature_names if "=" in name]
    assert len(one_hot) == 11 and {name.split("=")[0] for name in one_hot} == {"cp", "slope", "thal"}
    assert_on_unit_grid(heart.x)


def test_adult_keeps_every_data_row_and_has_108_features(adult):
    assert (len(adult_rows("adult.data.gz")), len(adult_rows("adult.test.gz"))) == (ADULT_TRAIN_ROWS, ADULT_TEST_ROWS)
    assert adult.x.shape == (ADULT_TRAIN_ROWS, 108)
    assert adult.test_x.shape == (ADULT_TEST_ROWS, 108)
    assert adult.classes == ("<=50K", ">50K")
    assert np.bincount(adult.y).tolist() == [24_720, 7_841]
    assert np.bincount(adult.test_y).tolist() == [12_435, 3_846]
    assert adult.validation_fraction == 0.2
    assert_on_unit_grid(adult.x)
    assert_on_unit_grid(adult.test_x)


def test_adult_categories_are_stripped_and_keep_question_mark(adult):
    names = adult.preprocessor.feature_names
    assert "workclass=?" in names and "native-country=?" in names and "sex=Female" in names
    categories = [c for column in adult.preprocessor.columns for c in getattr(column, "categories", ())]
    assert len(categories) == 102 and all(c == c.strip() for c in categories)
    assert "income" not in {column.name for column in adult.preprocessor.columns}


def test_adult_scaling_is_fitted_over_train_and_test_together(adult):
    age = adult.preprocessor.columns[0]
    raw_ages = [int(line.split(",")[0]) for line in adult_rows("adult.data.gz") + adult_rows("adult.test.gz")]
    assert (age.name, age.low, age.high) == ("age", min(raw_ages), max(raw_ages))


def test_adult_reader_skips_lines_that_are_not_data_rows(tmp_path):
    path = tmp_path / "adult.test"
    path.write_text(
        "|1x3 Cross validator\n"
        "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, "
        "United-States, <=50K.\n"
        "38, ?, 89814, HS-grad, 9, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 50, ?, >50K.\n\n"
    )
    table = read_adult_file(path)
    assert table.num_rows == 2
    assert table.column("income").to_pylist() == ["<=50K", ">50K"]
    assert table.column("workclass").to_pylist() == ["Private", "?"]
    assert table.column("age").to_pylist() == [25, 38]


def test_mnist_is_pixel_over_255_rounded(mnist):
    assert mnist.x.shape == (5000, 784)
    assert mnist.classes == tuple(str(digit) for digit in range(10))
    assert np.bincount(mnist.y).tolist() == [500] * 10
    first = np.array(shipped_lines("mnist_5k.csv.gz")[0].split(","), dtype=np.int64)
    np.testing.assert_array_equal(mnist.x[0], np.round(first[:784] / 255 * 10_000) / 10_000)
    assert mnist.classes[mnist.y[0]] == str(first[784])
    assert {(c.low, c.high) for c in mnist.preprocessor.columns} == {(0.0, 255.0)}
    assert_on_unit_grid(mnist.x)


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(DataError, match="choose one of " + ", ".join(BUILTIN_DATASETS)):
        load_builtin("iris")


def user_table() -> pa.Table:
    return pa.table(
        {
            "size": [1.0, 2.0, 3.0, 5.0],
            "shape": ["round", "square", "round", None],
            "always": [7, 7, 7, 7],
            "kind": ["cat", "dog", "dog", "cat"],
        }
    )


@pytest.fixture(params=["csv", "csv.gz", "parquet"])
def user_file(request, tmp_path):
    path = tmp_path / f"animals.{request.param}"
    if request.param == "parquet":
        pq.write_table(user_table(), path)
    elif request.param == "csv.gz":
        with pa.CompressedOutputStream(str(path), "gzip") as stream:
            pa_csv.write_csv(user_table(), stream)
    else:
        pa_csv.write_csv(user_table(), path)
    return path


def test_load_file_encodes_a_string_label_a_categorical_and_a_constant_column(user_file):
    dataset = load_file(user_file, label="kind")
    assert dataset.classes == ("cat", "dog")
    assert dataset.y.tolist() == [0, 1, 1, 0]
    assert dataset.preprocessor.feature_names == ["size", "shape=", "shape=round", "shape=square", "always"]
    expected = [
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.25, 0.0, 0.0, 1.0, 0.0],
        [0.5, 0.0, 1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0, 0.0],
    ]
    np.testing.assert_array_equal(dataset.x, expected)
    assert dataset.test_x is None and dataset.validation_fraction == 0.1 and dataset.label == "kind"


def test_numeric_labels_are_sorted_numerically(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("x,grade\n1,10\n2,2\n3,1\n4,2\n")
    dataset = load_file(path, label="grade")
    assert dataset.classes == ("1", "2", "10")
    assert dataset.y.tolist() == [2, 1, 0, 1]


def test_read_table_strips_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfage,target\r\n1,0\r\n2,1\r\n")
    assert read_table(path).column_names == ["age", "target"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.txt", b"a,b\n1,2\n", "unknown extension"),
        ("empty.csv", b"", "is empty"),
        ("header.csv", b"a,kind\n", "no data rows"),
        ("broken.parquet", b"not parquet at all", "cannot read data file"),
        ("ragged.csv", b"a,kind\n1,x\n2,y,3\n", "cannot read data file"),
        ("nolabel.csv", b"a,b\n1,2\n3,4\n", "label column 'kind' is not in .*its columns are a, b"),
        ("oneclass.csv", b"a,kind\n1,x\n2,x\n", "has 1 class"),
        ("onlylabel.csv", b"kind\nx\ny\n", "no feature columns"),
        ("nulllabel.csv", b"a,kind\n1,x\n2,\n3,y\n", "'kind' has 1 missing"),
    ],
)
def test_load_file_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_file(path, label="kind")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "nowhere.csv", label="kind")


# --- identifier columns and --exclude (issue 26, item 7) ---------------------------------------


def people_file(tmp_path, rows=40):
    """``rows`` people: a name column with a different value on every row (an identifier), a
    numeric and a categorical feature, and the label."""
    path = tmp_path / "people.csv"
    lines = ["name,age,city,y"] + [f"person {i},{20 + i % 30},{'north' if i % 3 else 'south'},{'yes' if i % 2 else 'no'}"
                                   for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_text_column_with_a_different_value_on_every_row_is_refused_as_an_identifier(tmp_path):
    with pytest.raises(DataError) as refused:
        load_file(people_file(tmp_path), label="y")
    message = str(refused.value)
    assert "\n" not in message and "column 'name'" in message and "40 rows" in message
    assert "--exclude name" in message


def test_exclude_keeps_a_column_out_of_the_features(tmp_path):
    dataset = load_file(people_file(tmp_path), label="y", exclude=("name",))
    assert dataset.preprocessor.feature_names == ["age", "city=north", "city=south"]


def test_a_few_rows_of_distinct_codes_are_no_identifier(tmp_path):
    # a small table (a toy, a test) of distinct categories: the one-hot inputs are few
    assert "name=person 5" in load_file(people_file(tmp_path, rows=6), label="y").preprocessor.feature_names


@pytest.mark.parametrize(("exclude", "message"), [(("nope",), "--exclude nope: .* has no column 'nope'"),
                                                  (("y",), "--exclude y: 'y' is the label"),
                                                  (("name", "age", "city"), "--exclude leaves .* no feature column")])
def test_exclude_names_columns_of_the_features(tmp_path, exclude, message):
    with pytest.raises(DataError, match=message):
        load_file(people_file(tmp_path), label="y", exclude=exclude)


# --- a label of too many classes (issue 26, item 3) ----------------------------------------------


def classes_file(tmp_path, classes: int, rows: int = 1000):
    path = tmp_path / f"classes{classes}.csv"
    path.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 11},k{i % classes}\n" for i in range(rows)))
    return path


def test_a_label_of_more_classes_than_a_mip_trains_is_refused_before_the_preprocessing(tmp_path, monkeypatch):
    from pipeline.data import datasets
    from pipeline.data.datasets import MAX_CLASSES

    def no_work(*args, **kwargs):
        raise AssertionError("the preprocessing was fitted")

    assert len(load_file(classes_file(tmp_path, MAX_CLASSES), label="label").classes) == MAX_CLASSES
    monkeypatch.setattr(datasets.Preprocessor, "fit", no_work)
    with pytest.raises(DataError, match=f"has 1000 classes; .* at most {MAX_CLASSES}.* 'label' is the label"):
        load_file(classes_file(tmp_path, 1000), label="label")


def test_arrays_of_more_classes_than_a_mip_trains_are_refused():
    from pipeline.data.datasets import MAX_CLASSES, dataset_from_arrays

    with pytest.raises(DataError, match=f"y has {MAX_CLASSES + 1} classes"):
        dataset_from_arrays(np.zeros((MAX_CLASSES + 1, 2)), np.arange(MAX_CLASSES + 1))
