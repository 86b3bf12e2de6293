"""sparsexc.metrics"""
