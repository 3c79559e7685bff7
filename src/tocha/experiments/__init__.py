"""Experiments: many runs compared with spread (`tocha compare`: the grid, the seeds, the report,
statistics over seeds, and scikit-learn baselines on the same split)."""
