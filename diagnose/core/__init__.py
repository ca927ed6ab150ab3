"""Pure computations over plain data (numpy arrays, DataFrames, frozen dataclasses). No printing, no files."""
