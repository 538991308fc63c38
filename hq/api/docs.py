"""/api/v1/docs: Swagger UI over HQ's OpenAPI schema, every file from HQ itself.

An HQ without internet (the usual case at a directorate) must show its docs
too, so nothing comes from a CDN: Swagger UI's files come from the
swagger-ui-bundle-v2 package and are served under /api/v1/docs/assets. The
page and the script that starts Swagger UI are ours, with no inline script,
so the page keeps the Content-Security-Policy of every other response.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path


def add_docs(app: FastAPI, prefix: str, openapi_url: str) -> None:
    """Swagger UI at `prefix`/docs, reading `openapi_url`."""
    docs, assets = f"{prefix}/docs", f"{prefix}/docs/assets"
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{app.title}</title>
  <link rel="icon" href="{assets}/favicon-32x32.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{docs}/start.js"></script>
</body>
</html>
"""
    start = (f"SwaggerUIBundle({{url: {openapi_url!r}, dom_id: '#swagger-ui', "
             "deepLinking: true, persistAuthorization: false});\n")
    app.mount(assets, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(docs, include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{docs}/start.js", include_in_schema=False)
    def docs_start() -> Response:
        return Response(start, media_type="text/javascript")
