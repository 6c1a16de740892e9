"""The application's admin audit log in MongoDB, through Airflow's MongoHook (connection
`mongo_default`): three aggregation pipelines run in MongoDB, never a scan of the collection in
Python. Field names come from the config (security_logs.fields); times are BSON dates.

Raises ProviderError (classified pymongo failure: unauthorized, timeout, connection_error...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maintenance.hooks.http_policy import ProviderError
from maintenance.hooks.mongo import mongo_error

MAX_GROUPS = 500
MAX_TIME_MS = 30_000        # each pipeline; a slower one answers MaxTimeMSExpired (a timeout)


def _field(name: str) -> str:
    return f"${name}"


def pipelines(fields: dict[str, str], *, since: datetime, until: datetime, login_action: str,
              role_action: str) -> dict[str, list[dict[str, Any]]]:
    """The three pipelines (exposed for tests and for reading): actions by user and type, role
    changes, failed logins per minute; plus the login count."""
    user, action, time, success, role, target = (fields[k] for k in ("user", "action", "time", "success", "role",
                                                                       "target"))
    window = {time: {"$gte": since, "$lt": until}}
    return {
        "by_user": [
            {"$match": window},
            {"$group": {"_id": {"user": _field(user), "action": _field(action)}, "count": {"$sum": 1},
                        "last": {"$max": _field(time)}}},
            {"$sort": {"count": -1, "_id.user": 1, "_id.action": 1}},
            {"$limit": MAX_GROUPS},
            {"$project": {"_id": 0, "user": "$_id.user", "action": "$_id.action", "count": 1, "last": 1}},
        ],
        "role_changes": [
            {"$match": {**window, action: role_action}},
            {"$sort": {time: 1}},
            {"$limit": MAX_GROUPS},
            {"$project": {"_id": 0, "user": _field(user), "target": _field(target), "role": _field(role),
                          "time": _field(time)}},
        ],
        # per minute, so the rate is judged over any 60 minutes, not clock hours a burst can straddle
        "failed_per_minute": [
            {"$match": {**window, action: login_action, success: False}},
            {"$group": {"_id": {"$dateTrunc": {"date": _field(time), "unit": "minute"}}, "count": {"$sum": 1},
                        "users": {"$addToSet": _field(user)}}},
            {"$sort": {"_id": 1}},
            {"$limit": 31 * 24 * 60},
            {"$project": {"_id": 0, "minute": "$_id", "count": 1, "users": 1}},
        ],
        "logins": [
            {"$match": {**window, action: login_action}},
            {"$count": "n"},
        ],
    }


def read_audit_log(conn_id: str, database: str | None, collection: str, fields: dict[str, str], *,
                   since: datetime, until: datetime, login_action: str, role_action: str) -> dict[str, Any]:
    """{by_user, role_changes, failed_per_minute, logins, database} of the period."""
    from airflow.providers.mongo.hooks.mongo import MongoHook
    from pymongo.errors import PyMongoError

    stages = pipelines(fields, since=since, until=until, login_action=login_action, role_action=role_action)
    try:
        with MongoHook(mongo_conn_id=conn_id) as hook:
            name = database or hook.connection.schema
            if not name:
                raise ProviderError("http_4xx", f"no database: set security_logs.database or the schema of "
                                                f"connection '{conn_id}'", conn_id=conn_id)
            coll = hook.get_conn()[name][collection]
            answer: dict[str, Any] = {"database": name}
            for key, pipeline in stages.items():
                answer[key] = list(coll.aggregate(pipeline, maxTimeMS=MAX_TIME_MS))
    except PyMongoError as exc:
        reason, text = mongo_error(exc)
        raise ProviderError(reason, f"reading {collection} through '{conn_id}' failed: {text}", conn_id=conn_id) from None
    answer["logins"] = int(answer["logins"][0]["n"]) if answer["logins"] else 0
    return answer
