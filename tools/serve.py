"""Serve a TSM over HTTP with dynamic batching (FastAPI + uvicorn).

    python tools/serve.py -w TSM_k400 [--port 8000] [--max_batch 8] [--max_wait_ms 10]
    python tools/serve.py --model_dir OUTDIR --host 0.0.0.0 --token SECRET

A thin shell over paddlevideo.deploy.cli.serve_main (see `--help` and docs/serving.md).
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddlevideo.deploy.cli import serve_main  # noqa: E402  (the path must be set first)

if __name__ == "__main__":
    sys.exit(serve_main())
