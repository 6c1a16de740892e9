"""The status page inside the Airflow UI (issue 12): an Airflow 3 plugin with a FastAPI app
mounted by the API server at /maintenance-status, and a nav entry that shows it in an iframe
at the UI route /plugin/maintenance-status.

Airflow's own auth protects it: a mounted app inherits none of the API server's, so the app
declares requires_access_view(PLUGINS) (Bearer token, or the UI's `_token` cookie that the
same-origin iframe sends); an anonymous request gets 401.

Cheap to import: Airflow's plugin scan loads this file in every process (scheduler, workers,
dag-processor), so FastAPI, Airflow's security module and the maintenance package are
imported only when the API server first reads `fastapi_apps`.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/maintenance-status"
UI_ROUTE = "maintenance-status"


def create_app() -> Any:
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse

    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    app = FastAPI(title="Maintenance status page", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(requires_access_view(AccessView.PLUGINS))])

    def context() -> tuple[Any, Any]:
        from maintenance.config import get_config
        from maintenance.hooks.results_db import results_store

        config = get_config()
        return config, results_store(config.results.conn_id)

    def page_data() -> dict[str, Any]:
        from maintenance.reports.data import monitored, status_page_data
        from maintenance.results import utcnow

        config, store = context()
        return status_page_data(store, monitored(config), config.maintenance_windows, now=utcnow(),
                                days=config.reports.status_page_days)

    @app.exception_handler(Exception)
    async def unavailable(request: Any, exc: Exception) -> HTMLResponse:
        # The results store or the config is unreachable: say so, without a traceback or a URL.
        import logging

        logging.getLogger(__name__).exception("status page: %s", type(exc).__name__)
        return HTMLResponse(f"<!DOCTYPE html><title>Status unavailable</title><h1>Status unavailable</h1>"
                            f"<p>The results store could not be read ({type(exc).__name__}); see the API server "
                            f"log.</p>", status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> HTMLResponse:
        from maintenance.reports.render import render_status_page

        return HTMLResponse(render_status_page(page_data()), headers={"Cache-Control": "no-store"})

    @app.get("/checks/{name}", response_class=HTMLResponse)
    def check_page(name: str) -> HTMLResponse:
        from datetime import timedelta

        from maintenance.reports.render import render_check_page
        from maintenance.results import utcnow

        config, store = context()
        if name not in {e.name for e in config.endpoints}:
            raise HTTPException(status_code=404, detail=f"no endpoint check named {name!r}")
        now = utcnow()
        series = store.response_times(name, now - timedelta(hours=24))
        return HTMLResponse(render_check_page(name, series, now), headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    def status_json() -> JSONResponse:
        """The page's data as JSON (for scripts and tests): per check state, since, uptime, incidents."""
        data = page_data()
        return JSONResponse({
            "generated_at": data["now"].isoformat(),
            "banner": [{**b, "since": b["since"].isoformat() if b["since"] else None} for b in data["banner"]],
            "checks": [{"name": c["name"], "critical": c["critical"], "state": c["state"],
                        "since": c["since"].isoformat() if c["since"] else None, "uptime": c["uptime"],
                        "bars": [b["percent"] for b in c["bars"]]} for c in data["checks"]],
            "incidents": [{"check": i["check"], "start": i["start"].isoformat(),
                           "end": i["end"].isoformat() if i["end"] else None, "duration_s": i["duration_s"],
                           "reason": i["reason"]} for i in data["incidents"]],
            "deploys": [{**d, "at": d["at"].isoformat()} for d in data["deploys"]],
            "maintenance": {"current": [w.model_dump(mode="json") for w in data["maintenance"]["current"]],
                            "next": data["maintenance"]["next"].model_dump(mode="json")
                            if data["maintenance"]["next"] else None},
        })

    return app


class MaintenanceStatusPlugin(AirflowPlugin):
    name = "maintenance_status_page"
    external_views = [{
        "name": "Status page",
        "href": f"{URL_PREFIX}/",
        "url_route": UI_ROUTE,          # rendered in an iframe at /plugin/maintenance-status
        "destination": "nav",
        "nav_top_level": True,          # a top-level item of the navigation bar
    }]
    _apps: list[dict[str, Any]] | None = None

    @property  # type: ignore[override]
    def fastapi_apps(self) -> list[dict[str, Any]]:
        # Built on first read (only the API server reads it): the plugin scan stays cheap elsewhere.
        if MaintenanceStatusPlugin._apps is None:
            MaintenanceStatusPlugin._apps = [{"app": create_app(), "url_prefix": URL_PREFIX,
                                              "name": "Maintenance status page"}]
        return MaintenanceStatusPlugin._apps
