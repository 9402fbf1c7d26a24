"""Training side of DeepProduct: data, backbones, losses, trainer (needs the ``train`` extra)."""
