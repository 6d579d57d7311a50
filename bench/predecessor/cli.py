"""The predecessor's per-command pattern: Typer, ``asyncio.run``, a new ``httpx.AsyncClient``.

``python -m bench.predecessor.cli --port N status`` / ``… ops-list``.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import typer

app = typer.Typer()
state = {"port": 8765}


@app.callback()
def main(port: int = 8765) -> None:
    state["port"] = port


async def _get(path: str) -> dict:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{state['port']}", timeout=10) as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


@app.command()
def status() -> None:
    print(json.dumps(asyncio.run(_get("/api/v1/system/status"))["data"], indent=2))


@app.command("ops-list")
def ops_list() -> None:
    print(json.dumps(asyncio.run(_get("/api/v1/operations"))["data"], indent=2))


if __name__ == "__main__":
    app()
