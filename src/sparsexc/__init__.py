"""sparsexc: multi-label and extreme multi-label classification in PyTorch."""

__version__ = "0.1.0.dev0"
