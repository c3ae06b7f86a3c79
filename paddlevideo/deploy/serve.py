"""tools/serve.py / paddlevideo-serve: an HTTP server over `Predictor`, with dynamic batching.

    python tools/serve.py -w TSM_k400 --port 8000
    curl -F file=@video.mp4 http://127.0.0.1:8000/v1/predict

POST /v1/predict (multipart field `file`) answers predict's record; GET /healthz, /v1/model,
/metrics (Prometheus text). Each upload is streamed into its own file (mkstemp in a private
temporary folder), counted while it streams (413 past --max_upload_mb) and removed after the
answer. Decoding runs in a thread pool; one batcher thread runs the model on whatever clips have
arrived, waiting at most --max_wait_ms for up to --max_batch of them. SIGTERM (uvicorn's
handler) stops accepting, answers the requests in flight, then exits 0.
"""
import asyncio
import concurrent.futures
import hmac
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time

from .errors import DeployError, first_line

__all__ = ["TOKEN_ENV", "Batcher", "Metrics", "create_app", "model_info"]

logger = logging.getLogger("paddlevideo")

TOKEN_ENV = "PADDLEVIDEO_TOKEN"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters and histograms, written as Prometheus text by `render`."""

    def __init__(self, max_batch):
        self.lock = threading.Lock()
        self.requests = {}                     # status code -> count
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.batch_bounds = tuple(sorted({1, 2, 4, 8, 16, 32, 64, max_batch}))
        self.batches = [0] * (len(self.batch_bounds) + 1)
        self.batch_sum = 0
        self.decode_failures = 0
        self.queue_length = lambda: 0

    def request(self, status, seconds):
        with self.lock:
            self.requests[status] = self.requests.get(status, 0) + 1
            self.latency[_bucket(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def batch(self, size):
        with self.lock:
            self.batches[_bucket(self.batch_bounds, size)] += 1
            self.batch_sum += size

    def decode_failure(self):
        with self.lock:
            self.decode_failures += 1

    def render(self):
        with self.lock:
            lines = ["# HELP paddlevideo_requests_total HTTP requests answered, by status code.",
                     "# TYPE paddlevideo_requests_total counter"]
            lines += [f'paddlevideo_requests_total{{code="{c}"}} {n}'
                      for c, n in sorted(self.requests.items())]
            lines += _histogram("paddlevideo_request_seconds", "Request latency in seconds.",
                                LATENCY_BUCKETS, self.latency, self.latency_sum)
            lines += _histogram("paddlevideo_batch_size", "Clips per model run.",
                                self.batch_bounds, self.batches, self.batch_sum)
            lines += ["# HELP paddlevideo_queue_length Clips decoded and not yet answered by the "
                      "model (waiting for a batch, or in the running one).",
                      "# TYPE paddlevideo_queue_length gauge",
                      f"paddlevideo_queue_length {self.queue_length()}",
                      "# HELP paddlevideo_decode_failures_total Uploads that were not a readable "
                      "video.",
                      "# TYPE paddlevideo_decode_failures_total counter",
                      f"paddlevideo_decode_failures_total {self.decode_failures}"]
        return "\n".join(lines) + "\n"


def _bucket(bounds, value):
    return next((i for i, b in enumerate(bounds) if value <= b), len(bounds))


def _histogram(name, help_text, bounds, counts, total):
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    running = 0
    for bound, n in zip(bounds, counts):
        running += n
        lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
    running += counts[-1]
    lines += [f'{name}_bucket{{le="+Inf"}} {running}', f"{name}_sum {total}",
              f"{name}_count {running}"]
    return lines


class Batcher:
    """One thread that runs the model on queued clips: it takes the first waiting clip, then
    whatever else arrives within max_wait_ms, up to max_batch, and answers each clip's future."""

    def __init__(self, predictor, max_batch, max_wait_ms, metrics):
        self.predictor, self.metrics = predictor, metrics
        self.max_batch, self.max_wait = max(1, int(max_batch)), max(0.0, max_wait_ms / 1000.0)
        self.queue = queue.Queue()
        self.pending, self._lock = 0, threading.Lock()        # submitted, not yet answered
        self.thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self.thread.start()

    def submit(self, clip):
        future = concurrent.futures.Future()
        with self._lock:
            self.pending += 1
        self.queue.put((clip, future))
        return future

    def _answered(self, n):
        with self._lock:
            self.pending -= n

    def stop(self):
        self.queue.put(None)
        self.thread.join(timeout=60)

    def _loop(self):
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    item = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:                 # stop after this batch
                    self.queue.put(None)
                    break
                batch.append(item)
            self.metrics.batch(len(batch))
            try:
                probs, best = self.predictor.run([clip for clip, _ in batch])
            except Exception as e:               # answer every waiter, keep serving
                self._answered(len(batch))
                for _, future in batch:
                    future.set_exception(DeployError(f"inference failed: {first_line(e)}"))
                continue
            self._answered(len(batch))
            for j, (_, future) in enumerate(batch):
                future.set_result((probs[j], best[j]))


class _HTTPError(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status, self.detail = status, detail


_SAFE_NAME = re.compile(r"[^\w.\- ]+")


def _upload_name(filename):
    """The uploaded file's base name, without path or control characters (it is echoed back)."""
    name = os.path.basename(str(filename or "").replace("\\", "/")).strip()
    return _SAFE_NAME.sub("_", name)[:200] or "upload"


async def _receive_upload(request, folder, limit):
    """Stream the multipart body's `file` part into its own file in `folder`; (path, name).
    Counts bytes as they come: 413 past `limit` without reading the rest."""
    from python_multipart.multipart import MultipartParser, parse_options_header
    from .inputs import VIDEO_EXTENSIONS
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise _HTTPError(400, "send the video as multipart/form-data in a field named 'file' "
                              "(curl -F file=@video.mp4)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _HTTPError(413, f"the upload is {int(declared)} bytes; the limit is {limit} bytes "
                              f"(--max_upload_mb)")
    state = {"field": None, "headers": {}, "hname": b"", "hvalue": b"", "fd": None,
             "path": None, "name": None, "size": 0, "error": None}

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        state["headers"][state["hname"].lower()] = state["hvalue"]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished():
        _, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        field = opts.get(b"name", b"").decode("utf-8", "replace")
        state["field"] = field
        if field == "file" and state["fd"] is None:
            name = _upload_name(opts.get(b"filename", b"").decode("utf-8", "replace"))
            ext = os.path.splitext(name)[1].lower()
            fd, path = tempfile.mkstemp(suffix=ext if ext in VIDEO_EXTENSIONS else ".video",
                                        dir=folder)
            state.update(fd=fd, path=path, name=name)

    def on_part_data(data, start, end):
        if state["field"] != "file" or state["fd"] is None or state["error"]:
            return
        state["size"] += end - start
        if state["size"] > limit:
            state["error"] = _HTTPError(413, f"the upload is over the limit of {limit} bytes "
                                             f"(--max_upload_mb)")
            return
        os.write(state["fd"], data[start:end])

    def on_part_end():
        state["headers"], state["field"] = {}, None

    parser = MultipartParser(params[b"boundary"], {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if state["error"]:
                raise state["error"]
        parser.finalize()
    except _HTTPError:
        _discard(state)
        raise
    except Exception as e:                      # a malformed body
        _discard(state)
        raise _HTTPError(400, f"the multipart body cannot be read: {first_line(e)}") from None
    if state["fd"] is not None:
        os.close(state["fd"])
        state["fd"] = None
    if state["path"] is None:
        raise _HTTPError(400, "no field named 'file' in the form (curl -F file=@video.mp4)")
    return state["path"], state["name"]


def _discard(state):
    if state["fd"] is not None:
        os.close(state["fd"])
    if state["path"] and os.path.exists(state["path"]):
        os.remove(state["path"])


def model_info(predictor):
    """GET /v1/model's answer."""
    from ..utils.download import file_sha256
    engine = predictor.engine
    info = engine.info or {}
    return {"model": predictor.model_id, "digest": file_sha256(engine.params_file),
            "digest_of": os.path.basename(engine.params_file),
            "engine": engine.backend, "precision": engine.precision,
            "device": getattr(engine, "device", "cpu"), "description": engine.describe(),
            "input": info.get("input"), "num_seg": info.get("num_seg"),
            "target_size": info.get("target_size"), "classes": list(predictor.labels or []),
            "random_weights": bool(info.get("random_weights"))}


def create_app(predictor, max_batch=8, max_wait_ms=10, workers=2, max_upload_mb=100,
               token=None):
    """The FastAPI app over a loaded Predictor."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse
    metrics = Metrics(max_batch)
    folder = tempfile.mkdtemp(prefix="paddlevideo-serve-")      # 0700: uploads stay private
    pool = concurrent.futures.ThreadPoolExecutor(max(1, int(workers)), thread_name_prefix="decode")
    batcher = Batcher(predictor, max_batch, max_wait_ms, metrics)
    metrics.queue_length = lambda: batcher.pending
    limit = int(max_upload_mb * 1024 * 1024)
    info = model_info(predictor)

    async def lifespan(app):
        yield
        batcher.stop()
        pool.shutdown(wait=True)
        shutil.rmtree(folder, ignore_errors=True)

    app = FastAPI(title="PaddleVideo TSM", lifespan=lifespan)

    def authorized(request):
        if not token:
            return True
        given = request.headers.get("authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(
            given[len("Bearer "):].encode(), token.encode())

    def answer(status, body, start):
        metrics.request(status, time.perf_counter() - start)
        return JSONResponse(body, status_code=status)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "model": predictor.model_id}

    @app.get("/v1/model")
    async def model(request: Request):
        if not authorized(request):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return info

    @app.get("/metrics")
    async def prometheus(request: Request):
        if not authorized(request):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/predict")
    async def predict(request: Request):
        start = time.perf_counter()
        if not authorized(request):
            return answer(401, {"detail": "missing or wrong bearer token"}, start)
        path = None
        try:
            path, name = await _receive_upload(request, folder, limit)
            loop = asyncio.get_running_loop()
            try:
                clip, note = await loop.run_in_executor(pool, predictor.prepare, path, name)
            except DeployError as e:
                metrics.decode_failure()
                return answer(422, {"detail": str(e).replace(path, name), "file": name}, start)
            probs, best = await asyncio.wrap_future(batcher.submit(clip))
            record = predictor.record(name, "video", probs, best, note)
            return answer(200, record, start)
        except _HTTPError as e:
            return answer(e.status, {"detail": e.detail}, start)
        except DeployError as e:
            return answer(500, {"detail": str(e)}, start)
        finally:
            if path and os.path.exists(path):
                os.remove(path)

    return app
