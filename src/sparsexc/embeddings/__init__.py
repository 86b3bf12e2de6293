"""sparsexc.embeddings"""
