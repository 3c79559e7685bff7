"""Figures (matplotlib, PNG): a leaf that draws what it is given and knows no run, task or dataset."""
