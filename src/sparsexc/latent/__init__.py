"""sparsexc.latent"""
