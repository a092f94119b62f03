"""Formats: timeline readers and their fixes, caption writers, OTIO adapters registered through our plugin
manifest."""
