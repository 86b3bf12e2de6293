"""sparsexc.estimator"""
