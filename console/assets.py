"""Static files the app serves itself, so that nothing loads from a CDN: the console's own style
sheet, and HTMX and Swagger UI from their npm packages (installed by ``make install`` into
``node_modules``, pinned in ``package-lock.json``). ``/docs`` is Swagger UI on those files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from dsar.logs import get_logger

log = get_logger("dsar.assets")

ROOT = Path(__file__).resolve().parent.parent
#: npm packages the pages use: URL path -> directory in node_modules.
VENDOR = {
    "htmx": Path("htmx.org") / "dist",
    "swagger-ui": Path("swagger-ui-dist"),
}


def node_modules() -> Path:
    return ROOT / "node_modules"


def mount_assets(app: FastAPI) -> None:
    app.mount(
        "/static/console",
        StaticFiles(directory=Path(__file__).resolve().parent / "staff" / "static"),
        name="console-static",
    )
    for name, sub in VENDOR.items():
        directory = node_modules() / sub
        if not directory.is_dir():
            log.warning("front-end package missing: run `make install`", package=str(sub.parts[0]))
            continue
        app.mount(f"/static/vendor/{name}", StaticFiles(directory=directory), name=f"vendor-{name}")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI from the app's own copy (works with no network beyond loopback)."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="dsar API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )
