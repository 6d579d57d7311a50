"""FastAPI under uvicorn on 127.0.0.1:PORT serving fixed payloads.

``python -m bench.predecessor.server PORT PAYLOADS.json`` — PAYLOADS maps ``status`` and
``ops_list`` to the JSON documents ktrdrd returned for the same commands.
"""

from __future__ import annotations

import json
import sys

import uvicorn
from fastapi import FastAPI


def make_app(payloads: dict) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/system/status")
    async def status() -> dict:
        return {"success": True, "data": payloads["status"]}

    @app.get("/api/v1/operations")
    async def list_operations(limit: int = 50) -> dict:
        return {"success": True, "data": payloads["ops_list"]}

    return app


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path) as f:
        payloads = json.load(f)
    uvicorn.run(make_app(payloads), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
