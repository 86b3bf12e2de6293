"""sparsexc.datasets"""
