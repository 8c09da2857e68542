"""What the benchmark scripts share: the float reference models and how results are written."""
