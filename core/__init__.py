"""The engine: time and rates, timeline -> audio regions, render, transcription, alignment, translation, captions, pipeline. No editor knowledge."""
