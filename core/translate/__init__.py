"""Translate stage: backends (CTranslate2/transformers models), sentence grouping (sentences), translation
of a caption document cue by cue (cues), fitting text to cue limits (fit), and glossaries (glossary).
"""
