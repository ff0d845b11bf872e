"""Pretraining of the embedded spoken-LID model on synthetic speech and singing."""
