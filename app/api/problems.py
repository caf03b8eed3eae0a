"""RFC 9457 problem details."""

from typing import Any

from fastapi.responses import JSONResponse

from app.core.request_context import current_request_id

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://loan-backend.example/problems/"


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in (extra or {}).items() if v is not None and k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "description": "RFC 9457 problem details",
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "request_id": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                    "allowed_actions": {"type": "array", "items": {"type": "string"}},
                },
            }
        }
    },
}


_COMMON_PROBLEMS: dict[int, str] = {
    400: "Malformed request (e.g. a NUL byte in the URL)",
    401: "Not signed in, or the token is invalid or expired",
    403: "The caller's role may not do this",
    404: "Unknown, or not visible to the caller",
    422: "Invalid input (problem+json names each field)",
    429: "Rate limited (see Retry-After)",
    503: "The database is unavailable (see Retry-After)",
}
_WRITE_PROBLEMS: dict[int, str] = {
    409: "Conflict: invalid state transition, stale version or a duplicate",
    413: "Body larger than 1 MiB",
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every API operation can answer these problems (auth, rate limit, strict input, a lost database): say so
    in the OpenAPI document, so clients and contract tests know them."""
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = {**_COMMON_PROBLEMS, **(_WRITE_PROBLEMS if method in {"post", "patch", "put", "delete"} else {})}
            for code, why in codes.items():
                operation["responses"].setdefault(str(code), {**PROBLEM_SCHEMA, "description": why})
    return schema
