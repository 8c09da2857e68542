"""Preprocessor: scaling, one-hot encoding, the 1e-4 grid, JSON storage and its errors."""

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.data.preprocessing import CategoricalColumn, NumericColumn, Preprocessor
from pipeline.errors import DataError, NetworkFileError


def small_table() -> pa.Table:
    return pa.table(
        {
            "age": [20, 40, 60],
            "colour": ["red", None, "blue"],
            "constant": [5.0, 5.0, 5.0],
            "grade": [10, 2, 1],
        }
    )


def test_fit_infers_numeric_and_categorical_columns_from_types():
    preprocessor = Preprocessor.fit(small_table())
    assert preprocessor.columns == (
        NumericColumn("age", 20.0, 60.0),
        CategoricalColumn("colour", ("", "blue", "red")),
        NumericColumn("constant", 5.0, 5.0),
        NumericColumn("grade", 1.0, 10.0),
    )
    assert preprocessor.feature_names == ["age", "colour=", "colour=blue", "colour=red", "constant", "grade"]


def test_explicit_categorical_columns_sort_numerically_and_write_integers_without_decimals():
    preprocessor = Preprocessor.fit(small_table(), categorical=["colour", "grade"])
    assert preprocessor.columns[3] == CategoricalColumn("grade", ("1", "2", "10"))
    # the same value given as a float or as text at prediction time still finds its category
    rows = pa.table({"age": [20], "colour": ["red"], "constant": [5.0], "grade": [2.0]})
    assert preprocessor.transform(rows)[0, -3:].tolist() == [0.0, 1.0, 0.0]
    rows = rows.set_column(3, "grade", pa.array(["10"]))
    assert preprocessor.transform(rows)[0, -3:].tolist() == [0.0, 0.0, 1.0]


def test_transform_scales_and_one_hot_encodes():
    preprocessor = Preprocessor.fit(small_table())
    expected = np.array(
        [
            [0.0, 0.0, 0.0, 1.0, 0.0, 1.0],
            [0.5, 1.0, 0.0, 0.0, 0.0, 0.1111],
            [1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(preprocessor.transform(small_table()), expected)


def test_unseen_category_gives_all_zeros_for_its_column():
    preprocessor = Preprocessor.fit(small_table())
    rows = pa.table({"age": [40], "colour": ["green"], "constant": [5.0], "grade": [1]})
    assert preprocessor.transform(rows)[0, 1:4].tolist() == [0.0, 0.0, 0.0]


def test_constant_column_is_always_zero_even_for_other_values():
    preprocessor = Preprocessor.fit(small_table())
    rows = pa.table({"age": [40, 40], "colour": ["red", "red"], "constant": [5.0, 99.0], "grade": [1, 1]})
    assert preprocessor.transform(rows)[:, 4].tolist() == [0.0, 0.0]


def test_values_outside_the_fitted_range_are_clipped():
    preprocessor = Preprocessor.fit(small_table())
    rows = pa.table({"age": [0, 100, 30], "colour": ["red"] * 3, "constant": [5.0] * 3, "grade": [1] * 3})
    assert preprocessor.transform(rows)[:, 0].tolist() == [0.0, 1.0, 0.25]


def test_extra_columns_such_as_the_label_are_ignored():
    preprocessor = Preprocessor.fit(small_table())
    with_label = small_table().append_column("label", pa.array(["a", "b", "a"]))
    np.testing.assert_array_equal(preprocessor.transform(with_label), preprocessor.transform(small_table()))


@given(
    st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=2, max_size=50
    )
)
def test_outputs_lie_on_the_1e4_grid_in_the_unit_interval(values):
    table = pa.table({"v": values})
    features = Preprocessor.fit(table).transform(table)
    steps = np.round(features * 10_000)
    assert np.all((features >= 0.0) & (features <= 1.0))
    np.testing.assert_array_equal(features, steps / 10_000)


def test_json_round_trip_is_exact():
    preprocessor = Preprocessor.fit(pa.table({"x": [0.1, 0.7, 1 / 3], "c": ["a", "b", None]}))
    stored = json.loads(json.dumps(preprocessor.to_json()))
    restored = Preprocessor.from_json(stored)
    assert restored == preprocessor
    table = pa.table({"x": [0.2, 0.3], "c": ["b", "a"]})
    np.testing.assert_array_equal(restored.transform(table), preprocessor.transform(table))


def test_malformed_json_is_a_network_file_error_naming_the_key():
    with pytest.raises(NetworkFileError, match="column 0 \\('x'\\): 'low' must be a finite number"):
        Preprocessor.from_json({"decimals": 4, "columns": [{"kind": "numeric", "name": "x"}]})


def test_numeric_column_with_nulls_is_refused_with_the_count():
    with pytest.raises(DataError, match="'age' has 2 missing"):
        Preprocessor.fit(pa.table({"age": [1.0, None, None, 4.0]}))


def test_numeric_nulls_at_transform_time_are_refused():
    preprocessor = Preprocessor.fit(pa.table({"age": [1.0, 4.0]}))
    with pytest.raises(DataError, match="'age' has 1 missing"):
        preprocessor.transform(pa.table({"age": [None, 2.0]}))


def test_missing_column_names_the_column_and_the_trained_columns():
    preprocessor = Preprocessor.fit(small_table())
    with pytest.raises(DataError, match=r"column 'grade' is missing; the model was trained on columns age, colour"):
        preprocessor.transform(small_table().drop_columns(["grade"]))


def test_unknown_categorical_column_is_refused():
    with pytest.raises(DataError, match="categorical column 'nope'"):
        Preprocessor.fit(small_table(), categorical=["nope"])


def test_text_in_a_numeric_column_is_refused():
    preprocessor = Preprocessor.fit(pa.table({"age": [1, 4]}))
    with pytest.raises(DataError, match="'age' is numeric"):
        preprocessor.transform(pa.table({"age": ["old", "young"]}))
