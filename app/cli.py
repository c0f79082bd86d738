"""``insighthub serve | worker | migrate``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Sequence

from app.settings import Settings


def _logging(level: str) -> None:
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.main import create_app

    settings = Settings()
    app = create_app(settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=settings.max_frame_bytes + 1024,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )


def worker(args: argparse.Namespace) -> None:
    from workers.runner import kinds_for, run_workers

    run = run_workers(Settings(), kinds_for(args.kind))
    try:
        import uvloop  # with uvicorn[standard]; the same loop uvicorn gives the API nodes
    except ImportError:
        asyncio.run(run)
    else:
        uvloop.run(run)


def migrate(_args: argparse.Namespace) -> None:
    from app.db.engine import make_engine
    from app.db.migrate import upgrade_database

    async def _run() -> None:
        engine = make_engine(Settings())
        try:
            await upgrade_database(engine)
        finally:
            await engine.dispose()

    asyncio.run(_run())
    print("database is at the latest migration")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="insighthub", description=__doc__)
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run an API node (uvicorn)")
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.set_defaults(func=serve)
    p_worker = sub.add_parser("worker", help="run worker processes (distributed mode)")
    p_worker.add_argument(
        "kind", nargs="?", default="all", choices=["chat", "documents", "workspaces", "all"]
    )
    p_worker.set_defaults(func=worker)
    p_migrate = sub.add_parser("migrate", help="apply the database migrations")
    p_migrate.set_defaults(func=migrate)
    args = parser.parse_args(argv)
    args.log_level = args.log_level.lower()
    _logging(args.log_level)
    args.func(args)


if __name__ == "__main__":
    main()
