"""sparsexc: multi-label and extreme multi-label classification in PyTorch."""

__version__ = "0.1.0.dev0"

__all__ = ["XCClassifier", "__version__", "environment_info"]


def __getattr__(name: str):
    # torch is imported only when the estimator is first used, so `import sparsexc` (and the CLI) stay fast
    if name == "XCClassifier":
        from sparsexc.estimator import XCClassifier

        return XCClassifier
    if name == "environment_info":  # what a measured result depends on (run folders and benchmarks record it)
        from sparsexc._environment import environment_info

        return environment_info
    raise AttributeError(f"module 'sparsexc' has no attribute {name!r}")
