"""The staff console: where the privacy team works cases (``/console``).

One module per page, each with its template in ``templates/`` and a test in ``tests/``:
``sign_in`` (``/console/sign-in``), ``queue`` (``/console``), ``case``
(``/console/cases/{reference}``), ``review`` (``/console/cases/{reference}/review``, the
review workbench), ``tasks`` (``/console/tasks``: a manually searched system's owner),
``reports`` (``/console/reports``: the figures a regulator asks for).
``pages`` holds what they share: who is asking, roles, CSRF, the look and the headers.
"""

from __future__ import annotations

from fastapi import APIRouter

from console.staff import case, queue, reports, review, sign_in, tasks

router = APIRouter(include_in_schema=False)
for module in (sign_in, queue, case, review, tasks, reports):
    router.include_router(module.router)

__all__ = ["router"]
