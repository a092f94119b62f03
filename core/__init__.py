"""The engine, no editor knowledge. One room per stage, in the order the data flows:

``timeline/`` (exact time, regions, audio render) -> ``speech/`` (models, transcription, word timing,
alignment) -> ``captions/`` (composition, line breaks, cue timing, validator) -> ``translate/``. The root
keeps what every stage shares (``model``, ``errors``, ``progress``, ``storage``) and ``pipeline``, which runs
the stages in order. Core never reads editor files itself: adapters/ loads a timeline and hands core a
``model.LoadedTimeline``.
"""
