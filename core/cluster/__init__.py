"""The facility cluster, bay side and shared logic: audio on the wire, bay credentials, fair share, the
client.

The bay's engine renders audio and maps words exactly as before; only transcription (and translation and
speaker labelling, when they are on and the cluster runs them: ``stages``) goes to the cluster (a Ray Serve
application, ``plugin/cluster``). Nothing here imports Ray or knows an editor.
"""
