"""The singing-language classifier: inputs, 1D-ResNet, training, artifacts (paper section 3.2)."""
