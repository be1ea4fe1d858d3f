"""`make bench`: the project's measured figures, written to bench/results/latest.json."""
