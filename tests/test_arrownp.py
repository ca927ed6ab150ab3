"""io/arrownp reads Arrow buffers the way pyarrow's own to_numpy does, without importing pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnose.io import arrownp

TYPES = [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.float32(), pa.float64(), pa.bool_()]


def _values(t: pa.DataType) -> st.SearchStrategy:
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_floating(t):
        return st.floats(width=32 if t == pa.float32() else 64, allow_nan=True)
    info = np.iinfo(t.to_pandas_dtype())
    return st.integers(int(info.min), int(info.max))


@st.composite
def arrays(draw: st.DrawFn) -> pa.ChunkedArray:
    t = draw(st.sampled_from(TYPES))
    chunks = draw(st.lists(st.lists(st.one_of(st.none(), _values(t)), max_size=40), min_size=1, max_size=4))
    chunked = pa.chunked_array([pa.array(c, type=t) for c in chunks], type=t)
    start = draw(st.integers(0, max(0, len(chunked) - 1)))
    return chunked.slice(start, draw(st.integers(0, len(chunked))))  # a slice: non-zero buffer offsets


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(arrays())
def test_same_numbers_as_pyarrow(arr: pa.ChunkedArray) -> None:
    ours = arrownp.to_numpy(arr)
    theirs = arr.to_numpy()
    if theirs.dtype == object:  # booleans with nulls: pyarrow gives True/False/None, we give 1/0/NaN
        theirs = np.array([np.nan if v is None else float(v) for v in theirs])
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)  # NaN at the same places
    np.testing.assert_array_equal(arrownp.valid(arr), arr.is_valid().to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(arrownp.floats(arr), theirs.astype(np.float64))


@given(st.lists(st.booleans(), max_size=50))
def test_bool_round_trip(mask: list[bool]) -> None:
    a = arrownp.from_numpy(np.array(mask, dtype=bool))
    assert a.to_pylist() == mask


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_number_round_trip(dtype: type) -> None:
    x = np.arange(7, dtype=dtype)
    assert arrownp.from_numpy(x).to_pylist() == x.tolist()


@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=40))
def test_strings_are_pyarrows_strings(values: list[str | None]) -> None:
    a = arrownp.strings(values)
    assert a.type == pa.string()
    assert a.to_pylist() == values
    a.validate(full=True)


def test_column_casts_to_the_schema_type() -> None:
    a = arrownp.column(np.array([1, 2, 3], dtype=np.int64), pa.int32())
    assert a.type == pa.int32() and a.to_pylist() == [1, 2, 3]
    b = arrownp.column([0.5, 1.5], pa.float32())
    assert b.type == pa.float32() and b.to_pylist() == [0.5, 1.5]
