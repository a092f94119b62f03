"""The facility cluster, bay side and shared logic: audio on the wire, bay credentials, fair share, the
client.

The bay's engine renders audio and maps words exactly as before; only transcription goes to the cluster (a Ray
Serve application, ``plugin/cluster``). Nothing here imports Ray or knows an editor.
"""
