"""InsightHub's streaming path measured against a bare python-socketio server.

``python -m benchmarks [--quick]``: see benchmarks/README.md and benchmarks/__main__.py.
"""
