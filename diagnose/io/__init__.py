"""The edges: loading models, dataset splits, prediction files and training logs; writing outputs safely."""
