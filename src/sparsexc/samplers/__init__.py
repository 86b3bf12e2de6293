"""sparsexc.samplers"""
