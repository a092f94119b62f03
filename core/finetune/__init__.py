"""Corrections and fine-tuning: read the packaged model back into trainable weights, LoRA, convert back."""
