"""The local engine service: an HTTP API (FastAPI) over a persistent job queue, safe on localhost.

``captionbridge serve`` runs it (``server.serve``); ``client.EngineClient`` talks to it with the standard library
only. Modules: ``paths`` (config folder, token, service.json), ``options`` (job options), ``intake`` (timeline
checks), ``store`` (SQLite), ``jobs`` (queue and workers), ``schemas`` + ``app`` (HTTP API), ``server``.
"""
