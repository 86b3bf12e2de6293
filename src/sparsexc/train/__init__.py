"""sparsexc.train"""
