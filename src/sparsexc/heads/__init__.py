"""sparsexc.heads"""
