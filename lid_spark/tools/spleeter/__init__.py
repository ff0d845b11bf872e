"""Spleeter (TensorFlow) tooling: its own environment, and training small models on the synthetic world."""
