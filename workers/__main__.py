"""``python -m workers chat|documents|workspaces|all`` (the same as ``insighthub worker``)."""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
