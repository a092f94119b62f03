"""Captions stage: presets, composition of words into cues (compose), line breaks (line_breaking), cue
timing against frames and shot changes (cue_timing, shot_changes), and the rule validator (validate).
"""
