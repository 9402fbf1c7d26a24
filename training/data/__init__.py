"""DeepProduct."""
