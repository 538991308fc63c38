"""HQ's HTTP API (FastAPI): REST under /api/v1, the live stream, exports, health and metrics.

`hq.api.app.create_app(store, settings, live_feed)` builds the application;
`python -m hq run` serves it beside ingest, `python -m hq token ...` manages
its tokens.
"""
