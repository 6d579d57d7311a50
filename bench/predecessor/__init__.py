"""A stand-in of the predecessor's CLI pattern, the baseline for ``bench/cli_startup.py``.

Typer + ``asyncio.run`` + a new ``httpx.AsyncClient`` per command → FastAPI under uvicorn over TCP,
returning the same JSON payload that ktrdrd returns for the same command. Only the pattern is
reproduced (imports, event loop, client set-up, HTTP round trip, teardown), not the old code.
"""
