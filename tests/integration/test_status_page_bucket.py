"""Reports published to a bucket (moto's S3 server) served by the status-page app in a real
Airflow API server, through the reports connection: the link Slack announces opens the report
behind the login (issue 17, item 10)."""

from __future__ import annotations

import json
import textwrap

import boto3
import requests

from airflow_api_server import api_server
from maintenance.reports import publish
from maintenance.results import ResultsStore

PREFIX = "/maintenance-status"

BUCKET = "ops-reports-served"
NAME = "monthly/example.org-monthly-2026-11.html"


def test_bucket_reports_are_served_behind_the_login(airflow_db, tmp_path, moto_url):
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing-SECRET")
    s3.create_bucket(Bucket=BUCKET)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    ResultsStore(url)
    config = tmp_path / "maintenance.yaml"
    config.write_text(textwrap.dedent(f"""
        site: {{name: example.org, url: "https://example.org"}}
        results: {{conn_id: status_results}}
        heartbeat: {{late_after: {{}}}}
        endpoints:
          - {{name: homepage, url: "https://example.org/", conditions: ["[STATUS] == 200"]}}
        reports: {{bucket: {BUCKET}, conn_id: s3_reports, prefix: maintenance-reports/}}
    """))
    connection = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing-SECRET",
                             "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}})
    with api_server(tmp_path, config, url, {"AIRFLOW_CONN_S3_REPORTS": connection}) as server:
        published = publish.upload_s3(s3, BUCKET, "maintenance-reports/", NAME, "<h1>November</h1>",
                                      ui_base=server["base"])
        assert published.link == f"{server['base']}{PREFIX}/reports/{NAME}"
        auth = {"Authorization": f"Bearer {server['token']}"}
        assert requests.get(published.link, timeout=30).status_code == 401
        report = requests.get(published.link, headers=auth, timeout=30)
        assert report.status_code == 200 and report.text == "<h1>November</h1>"
        page = requests.get(f"{server['base']}{PREFIX}/", headers=auth, timeout=30).text
        assert f'href="reports/{NAME}"' in page
        missing = requests.get(f"{server['base']}{PREFIX}/reports/monthly/example.org-monthly-2026-10.html",
                               headers=auth, timeout=30)
        assert missing.status_code == 404 and "testing-SECRET" not in missing.text
