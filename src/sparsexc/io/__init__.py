"""sparsexc.io"""
