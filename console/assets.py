"""Static files the app serves itself, so that nothing loads from a CDN: the console's own style
sheet, and HTMX and Swagger UI from their npm packages (installed by ``make install`` into
``node_modules``, pinned in ``package-lock.json``; the wheel carries copies in ``console/vendor/``,
see setup.py). ``/docs`` is Swagger UI on those files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from console.vendor_files import VENDOR_FILES
from dsar.logs import get_logger

log = get_logger("dsar.assets")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def node_modules() -> Path:
    return ROOT / "node_modules"


def vendor_directory(name: str) -> Path:
    """The installed package's copy (a wheel), else the npm package itself (a checkout)."""
    bundled = HERE / "vendor" / name
    return bundled if bundled.is_dir() else node_modules() / VENDOR_FILES[name][0]


def mount_assets(app: FastAPI) -> None:
    app.mount(
        "/static/console",
        StaticFiles(directory=Path(__file__).resolve().parent / "staff" / "static"),
        name="console-static",
    )
    for name, (sub, _files) in VENDOR_FILES.items():
        directory = vendor_directory(name)
        if not directory.is_dir():
            log.warning("front-end package missing: run `make install`", package=sub.split("/")[0])
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
