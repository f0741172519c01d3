"""The front-end files the app serves from npm packages (no CDN), and where each comes from.

Read by ``console/assets.py`` and by ``setup.py``, which copies them into the wheel under
``console/vendor/`` (an installed app has no ``node_modules``). No imports: the build reads this
file before any dependency is installed.
"""

#: URL name -> (directory in node_modules, the files the pages use)
VENDOR_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "htmx": ("htmx.org/dist", ("htmx.min.js",)),
    "swagger-ui": (
        "swagger-ui-dist",
        ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "oauth2-redirect.html", "LICENSE"),
    ),
}
