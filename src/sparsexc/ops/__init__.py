"""sparsexc.ops"""
