"""tocha: train, compare and ship PyTorch image classifiers from one command."""

__version__ = "0.1.0"
