"""Numerical kernels: plain functions on arrays, with no scikit-learn machinery."""
