"""CaptionBridge: frame-accurate, offline captions for editors' timelines.

Data flows one way: timeline -> audio regions -> audio -> words -> cues -> files.
"""

__version__ = "0.1.0"
