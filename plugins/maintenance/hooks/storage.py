"""S3 and S3-compatible buckets through Airflow's S3Hook (one `aws` connection per bucket).

The connection's extra carries endpoint_url for R2 (https://<account>.r2.cloudflarestorage.com,
region auto) or MinIO. The client gets a connection pool as large as the verification
concurrency, so the threads never queue on the pool.
"""

from __future__ import annotations

from typing import Any


def s3_client(conn_id: str, *, pool: int = 16, kind: str = "s3") -> Any:
    """A boto3 S3 client for the connection; raises AirflowNotFoundException when it is missing."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import BaseHook
    from botocore.config import Config

    BaseHook.get_connection(conn_id)   # a missing connection raises here, not deep inside boto3
    config = Config(max_pool_connections=max(10, pool), retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=10, read_timeout=60)
    hook = S3Hook(aws_conn_id=conn_id, config=config, **({"region_name": "auto"} if kind == "r2" else {}))
    return hook.get_conn()


def client_error(exc: Exception) -> tuple[str, str]:
    """(reason, message) of a botocore error, without secrets: code and HTTP status only."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    from maintenance.hooks.http_policy import classify_exception, classify_status

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = error.get("Code", "?")
        reason = "unauthorized" if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") \
            else classify_status(status) or "http_4xx"
        return reason, f"{code} (HTTP {status})"
    if isinstance(exc, NoCredentialsError):
        return "unauthorized", "no credentials"
    if isinstance(exc, EndpointConnectionError):
        return "refused", "cannot reach the endpoint"
    return classify_exception(exc)


def bucket_facts(client: Any, name: str) -> dict[str, Any]:
    """The bucket settings the weekly check reads: versioning status, replication rules,
    lifecycle rules, public access block; a 'not configured' answer becomes None."""
    from botocore.exceptions import ClientError

    def optional(call: Any, *absent: str) -> Any:
        try:
            return call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in absent:
                return None
            raise

    versioning = client.get_bucket_versioning(Bucket=name).get("Status")
    replication = optional(lambda: client.get_bucket_replication(Bucket=name), "ReplicationConfigurationNotFoundError")
    lifecycle = optional(lambda: client.get_bucket_lifecycle_configuration(Bucket=name), "NoSuchLifecycleConfiguration")
    block = optional(lambda: client.get_public_access_block(Bucket=name), "NoSuchPublicAccessBlockConfiguration")
    return {"versioning": versioning,
            "replication": (replication or {}).get("ReplicationConfiguration", {}).get("Rules") if replication else None,
            "lifecycle": lifecycle.get("Rules") if lifecycle else None,
            "public_access_block": block.get("PublicAccessBlockConfiguration") if block else None}


def replication_statuses(client: Any, name: str, keys: list[str]) -> list[str | None]:
    """The ReplicationStatus (COMPLETED, PENDING, FAILED, REPLICA or None) of each object."""
    return [client.head_object(Bucket=name, Key=key).get("ReplicationStatus") for key in keys]
