"""The framework floor: a Flask endpoint that reads and parses the body and returns a fixed card.

Served by gunicorn with the service's settings, it costs what Flask, gunicorn and orjson cost
for the same request and nothing else; the service's throughput is reported as a share of it.
"""

from __future__ import annotations

import orjson
from flask import Flask, Response, jsonify, request

from service.heap import settle

FIXED_CARD = {
    "uuid": "6f1c2d9e-3b0a-4f5e-9c1d-2a7b8e4f0c31",
    "summary": "Fixed card of the framework floor",
    "indicator": "info",
    "source": {"label": "spinehip-cds benchmark floor"},
}

app = Flask(__name__)
settle()  # the garbage collector settings of `spinehip serve`, so only the application differs


@app.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    body = orjson.loads(request.get_data(cache=False))
    if not isinstance(body, dict):
        return Response(status=400)
    return jsonify({"cards": [FIXED_CARD]})


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})
