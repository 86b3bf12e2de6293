"""sparsexc.models"""
