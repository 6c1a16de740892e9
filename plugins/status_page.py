"""The status page inside the Airflow UI (issue 12): an Airflow 3 plugin with a FastAPI app
mounted by the API server at /maintenance-status, and a nav entry that shows it in an iframe
at the UI route /plugin/maintenance-status. It also serves the weekly and monthly reports
(/maintenance-status/reports/, issue 17) from the folder or bucket they are published to: the
link Slack announces them with.

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

URL_PREFIX = "/maintenance-status"   # = maintenance.reports.publish.STATUS_APP_PREFIX (the Slack links)
UI_ROUTE = "maintenance-status"


def create_app() -> Any:
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException
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

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Any, exc: StarletteHTTPException) -> Any:
        # A browser without a session (a report link opened from Slack) goes to Airflow's login
        # and comes back; scripts keep the plain 401.
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            from urllib.parse import urlencode

            from fastapi.responses import RedirectResponse

            return RedirectResponse(f"/api/v2/auth/login?{urlencode({'next': str(request.url)})}", status_code=307)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unavailable(request: Any, exc: Exception) -> HTMLResponse:
        # The results store or the config is unreachable: say so, without a traceback or a URL.
        import logging

        logging.getLogger(__name__).exception("status page: %s", type(exc).__name__)
        return HTMLResponse(f"<!DOCTYPE html><title>Status unavailable</title><h1>Status unavailable</h1>"
                            f"<p>The results store or the reports could not be read ({type(exc).__name__}); see the "
                            f"API server log.</p>", status_code=503)

    def reports(config: Any) -> tuple[list[dict[str, Any]], Any]:
        """(the published reports, newest first; a reader of one report by kind and file name)."""
        from maintenance.reports import publish

        settings = config.reports
        if settings.bucket:
            from maintenance.hooks.storage import s3_client

            client = s3_client(settings.conn_id)
            return (publish.list_s3(client, settings.bucket, settings.prefix),
                    lambda kind, file: publish.read_s3(client, settings.bucket, settings.prefix, kind, file))
        folder = publish.reports_folder(settings)
        return publish.list_folder(folder), lambda kind, file: publish.read_folder(folder, kind, file)

    def newest_reports(config: Any, count: int) -> list[dict[str, Any]] | None:
        """The newest reports for the status page; None when they cannot be listed (said on the page)."""
        try:
            return reports(config)[0][:count]
        except Exception as exc:  # noqa: BLE001 - the status page still shows the checks
            import logging

            logging.getLogger(__name__).warning("status page: reports not listed: %s", type(exc).__name__)
            return None

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> HTMLResponse:
        from maintenance.reports.render import render_status_page

        config, _ = context()
        return HTMLResponse(render_status_page(page_data(), reports=newest_reports(config, 6)),
                            headers={"Cache-Control": "no-store"})

    @app.get("/reports/", response_class=HTMLResponse)
    def report_list() -> HTMLResponse:
        from maintenance.reports.render import render_report_list

        config, _ = context()
        return HTMLResponse(render_report_list(reports(config)[0]), headers={"Cache-Control": "no-store"})

    @app.get("/reports/{kind}/{file}", response_class=HTMLResponse)
    def report(kind: str, file: str) -> HTMLResponse:
        config, _ = context()
        html = reports(config)[1](kind, file)
        if html is None:
            raise HTTPException(status_code=404, detail="no such report (it may have been pruned)")
        # A report is self-contained (inline CSS, data: images, no script): say so to the browser.
        return HTMLResponse(html, headers={"Cache-Control": "no-cache", "Content-Security-Policy":
                                           "default-src 'none'; img-src data:; style-src 'unsafe-inline'"})

    @app.get("/checks/{name}", response_class=HTMLResponse)
    def check_page(name: str) -> HTMLResponse:
        from datetime import timedelta

        from maintenance.reports.render import render_check_page
        from maintenance.results import utcnow

        config, store = context()
        if name not in {e.name for e in config.endpoints}:
            raise HTTPException(status_code=404, detail=f"no endpoint check named {name!r}")
        from maintenance.reports.data import check_facts

        now = utcnow()
        series = store.response_times(name, now - timedelta(hours=24))
        return HTMLResponse(render_check_page(name, series, now, facts=check_facts(store, name, now)),
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    def status_json() -> JSONResponse:
        """The page's data as JSON (for scripts and tests): per check state, since, uptime, incidents."""
        data = page_data()
        return JSONResponse({
            "generated_at": data["now"].isoformat(),
            "banner": [{**b, "since": b["since"].isoformat() if b["since"] else None} for b in data["banner"]],
            "checks": [{"name": c["name"], "critical": c["critical"], "state": c["state"],
                        "since": c["since"].isoformat() if c["since"] else None, "uptime": c["uptime"],
                        "counting_since": {k: p["since"].isoformat() if p else None for k, p in c["partial"].items()},
                        "response_ms": c["response_ms"], "today_p95_ms": c["today_p95"],
                        "tls_days_left": c["tls_days_left"],
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
