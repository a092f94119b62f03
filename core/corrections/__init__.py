"""Corrections: what people approved in review, kept as training data (audio span + model words + corrected
text), a review queue of uncertain speech, datasets for export, and a vocabulary of corrected words."""
