"""Looking at results: compare (grid, report), statistics, metrics, scikit-learn baselines,
plots and figures, and the layer summary."""
