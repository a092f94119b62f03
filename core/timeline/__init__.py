"""Timeline stage: exact time and rates (timebase, otio_time), media paths, the timeline's audio regions
(regions) and their sample-exact mix (render_audio).
"""
