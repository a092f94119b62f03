"""Speech stage: which Whisper model and where (models), transcription with its cache (transcribe,
transcript_cache), word timing (word_timing), script alignment (align), Chinese text handling (chinese_text).
"""
