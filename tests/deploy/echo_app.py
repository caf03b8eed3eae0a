"""A dependency-free ASGI app that answers with what it was sent, served by gunicorn with
deploy/gunicorn_config.py behind the shipped nginx site: the checks read from it which client address and scheme
the app would see, which headers nginx forwarded and how large a body got through."""

import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({
        "path": scope["path"],
        "client": scope["client"][0] if scope.get("client") else None,
        "scheme": scope["scheme"],
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "body_bytes": size,
        "pid": os.getpid(),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
