"""The server against offline predict, on the same real videos, in one run.

    python benchmarks/serve.py [--config configs/recognition/tsm/tsm_demo.yaml] [--requests 48]
                               [--max_batch 8] [--max_wait_ms 10] [--workers 2] [--out DIR]

The model is the config's network exported with --random_weights (the figures are about the
serving machinery, decode + inference + HTTP, not accuracy; the demo config's TSM-R18 at 32 px
keeps one run to minutes on a small CPU). The inputs are the videos in ../shared/videos, repeated
to --requests. Offline: Predictor over the paths at batch sizes 1, 4 and 8 (decode then one
inference per batch, as predict.py runs), the best one's throughput taken. Server: tools/serve.py
in a subprocess on 127.0.0.1, 1, 4 and 16 concurrent clients uploading the same videos;
throughput, p50 and p99 latency. Goals (issue 19): 16-client throughput >= 0.9 x offline; p99 at
4 clients <= 1.5 x offline time of one batch of 4. Writes serve.{json,md} to --out
(benchmarks/results). --smoke runs every step on 6 requests (tiny written videos when
../shared/videos is absent): it checks that the script works end to end; its figures are
meaningless.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VIDEOS = os.path.join(REPO, "..", "shared", "videos")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(port, path, data):
    boundary = "----pvbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            f"{os.path.basename(path)}\"\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/v1/predict", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def offline(model_dir, inputs, batch):
    from paddlevideo import Predictor
    predictor = Predictor(model_dir, batch_size=batch)
    predictor.predict(inputs[:batch])                       # warm-up
    start = time.perf_counter()
    records = predictor.predict(inputs)
    wall = time.perf_counter() - start
    assert all("error" not in r for r in records), records[0]
    return {"batch": batch, "seconds": wall, "throughput": len(inputs) / wall,
            "per_batch_ms": 1000 * wall / (len(inputs) / batch)}, records


def clients(port, inputs, blobs, n):
    latencies, lock, todo = [], threading.Lock(), list(range(len(inputs)))
    answers = {}

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                k = todo.pop()
            start = time.perf_counter()
            status, record = upload(port, inputs[k], blobs[inputs[k]])
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                answers[k] = (status, record)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    assert all(s == 200 for s, _ in answers.values()), next(r for s, r in answers.values()
                                                             if s != 200)
    return {"clients": n, "throughput": len(inputs) / wall,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "p99_ms": 1000 * float(np.percentile(latencies, 99))}, answers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "recognition", "tsm",
                                                     "tsm_demo.yaml"))
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--max_batch", type=int, default=8)
    ap.add_argument("--max_wait_ms", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--smoke", action="store_true",
                    help="6 requests, tiny videos if ../shared is absent: checks the script; "
                         "its figures are meaningless")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="serve-bench-")
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _videos(args, tmp):
    if os.path.isdir(VIDEOS):
        return sorted(os.path.join(VIDEOS, f) for f in os.listdir(VIDEOS))
    if not args.smoke:
        sys.exit(f"error: {VIDEOS} is absent: the benchmark runs on its real videos")
    import cv2
    paths = []
    for k in range(2):
        path = os.path.join(tmp, f"tiny{k}.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
        for t in range(16):
            writer.write(np.full((48, 64, 3), (40 * k + 8 * t) % 256, np.uint8))
        writer.release()
        paths.append(path)
    return paths


def _run(args, tmp):
    from paddlevideo.deploy.cli import export_main
    if args.smoke:
        args.requests = 6
    videos = _videos(args, tmp)
    inputs = [videos[i % len(videos)] for i in range(args.requests)]
    blobs = {}
    for v in videos:
        with open(v, "rb") as f:
            blobs[v] = f.read()
    model_dir = os.path.join(tmp, "model")
    from paddlevideo.config_check import load_and_check_config
    classes = load_and_check_config(args.config).MODEL.head.num_classes
    labels = os.path.join(tmp, "labels.txt")           # the demo's list is made by its data tool
    with open(labels, "w") as f:
        f.writelines(f"{i} class_{i}\n" for i in range(classes))
    assert export_main(["-c", args.config, "--random_weights", "-o", model_dir,
                        "--label_list", labels]) == 0
    results = {"machine": {"cpu": platform.processor() or platform.machine(),
                           "cores": os.cpu_count(), "python": platform.python_version()},
               "config": os.path.relpath(args.config, REPO), "requests": args.requests,
               "smoke": bool(args.smoke),
               "videos": [os.path.basename(v) for v in videos],
               "server": {"max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                          "workers": args.workers}}
    runs = []
    for batch in (1, 4, 8):
        run, expected = offline(model_dir, inputs, batch)
        runs.append(run)
        print(f"offline batch {batch}: {run['throughput']:.2f} clips/s, "
              f"{run['per_batch_ms']:.0f} ms per batch", flush=True)
    best = max(runs, key=lambda r: r["throughput"])
    batch4 = next(r for r in runs if r["batch"] == 4)
    results["offline"] = {"runs": runs, "best": best}
    port = _free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "serve.py"),
                             "--model_dir", model_dir, "--port", str(port),
                             "--max_batch", str(args.max_batch), "--max_wait_ms",
                             str(args.max_wait_ms), "--workers", str(args.workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        upload(port, inputs[0], blobs[inputs[0]])                  # warm-up
        results["server_runs"] = []
        for n in (1, 4, 16):
            run, answers = clients(port, inputs, blobs, n)
            same = all(answers[k][1]["top1_index"] == expected[k]["top1_index"] for k in answers)
            run["same_top1_as_offline"] = same
            results["server_runs"].append(run)
            print(f"server, {n} client(s): {run['throughput']:.2f} clips/s, p50 "
                  f"{run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms, same top-1: {same}",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    s16 = results["server_runs"][2]
    s4 = results["server_runs"][1]
    results["ratios"] = {
        "throughput_16_clients_over_offline": s16["throughput"] / best["throughput"],
        "p99_4_clients_over_offline_batch_of_4": s4["p99_ms"] / batch4["per_batch_ms"]}
    r = results["ratios"]
    results["goals_met"] = {"throughput >= 0.9": r["throughput_16_clients_over_offline"] >= 0.9,
                            "p99 <= 1.5x": r["p99_4_clients_over_offline_batch_of_4"] <= 1.5}
    print(f"16-client throughput / offline best: {r['throughput_16_clients_over_offline']:.2f} "
          f"(goal >= 0.9); 4-client p99 / offline batch of 4: "
          f"{r['p99_4_clients_over_offline_batch_of_4']:.2f} (goal <= 1.5)")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "serve.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "serve.md"), "w") as f:
        f.write(_markdown(results))
    return 0


def _markdown(res):
    m = res["machine"]
    lines = [f"# Serving vs offline predict ({res['config']}, random weights)", ""]
    if res["smoke"]:
        lines += ["Smoke run (--smoke): 6 requests; the figures are meaningless.", ""]
    lines += [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. "
              f"{res['requests']} requests over {', '.join(res['videos'])}. Server: max_batch "
              f"{res['server']['max_batch']}, max_wait_ms {res['server']['max_wait_ms']}, "
              f"{res['server']['workers']} decode workers.", "",
              "| run | clips/s | p50 ms | p99 ms | per batch ms |", "|---|---|---|---|---|"]
    for r in res["offline"]["runs"]:
        lines.append(f"| offline batch {r['batch']} | {r['throughput']:.2f} | | | "
                     f"{r['per_batch_ms']:.0f} |")
    for r in res["server_runs"]:
        lines.append(f"| server, {r['clients']} client(s) | {r['throughput']:.2f} | "
                     f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | |")
    r = res["ratios"]
    lines += ["", f"- 16-client throughput / best offline: "
                  f"**{r['throughput_16_clients_over_offline']:.2f}** (goal >= 0.9)",
              f"- 4-client p99 / offline time of one batch of 4: "
              f"**{r['p99_4_clients_over_offline_batch_of_4']:.2f}** (goal <= 1.5)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
