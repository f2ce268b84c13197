"""A wrapped app that reports the request headers it was given (`serve --app`): proves the
envelope passes no client token upstream."""

import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    user = scope.get("user")
    token = getattr(user, "access_token", None)
    user = [getattr(token, "client_id", None), getattr(token, "subject", None)]
    body = json.dumps({"headers": headers, "user": user}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
