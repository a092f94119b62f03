"""Declarations: the OTIO plugin manifest (found through the `opentimelineio.plugins` entry point)
and the Premiere panel manifest."""
