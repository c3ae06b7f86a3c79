"""Training speed and memory, and --test throughput, on this CPU.

    python benchmarks/train_speed.py [--iters 6] [--rounds 3] [--r50_iters 3] [--test_runs 4]
                                     [--mem_epochs 12] [--mem_iters 4] [--parts ...]
                                     [--out DIR] [--smoke]

Parts (each in its own process, so each gets the thread count it asks for before paddle loads):
- train_demo: the demo config (configs/recognition/tsm/tsm_demo.yaml, its default workers):
  clips per second and reader_cost as a share of batch_cost, first step left out.
- train_demo_sync: the same with the host reading every step's loss and accuracies back, as the
  loop did before they stayed on the device until a log step. It alternates with train_demo for
  --rounds rounds; the ratio of their seconds per step (medians over rounds) is the cost of the
  per-step host sync.
- train_memory: the demo config with validation for --mem_epochs epochs of --mem_iters steps:
  worker processes alive and PSS (proportional set size) of the training process and of its
  children after every epoch, and after training.
- train_r50: TSM-R50 8x224 (configs/recognition/tsm/tsm_k400_videos.yaml, batch 2, 4 workers,
  ImageNet weights not loaded) on copies of ../shared/videos/example.avi.
- test_dygraph_1 / test_dygraph_all: dygraph forward of TSM-R50 8x224, batch 1, on 1 thread
  (PaddleVideo's default) and on all cores.
- test_fast: what `main.py --test` runs on CPU (the deploy InferenceEngine, oneDNN fp32, all
  cores), same model and input; its answers are checked against dygraph.
Prints a table and writes train_speed.{json,md} to --out (benchmarks/results).
--smoke runs the same parts on TSM-R18 4x32 for one or two steps and runs (and on a tiny demo set
made in a temporary folder, not data/demo): it checks that the script works end to end, and its
figures are meaningless.
"""
import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
RESULTS = os.path.join(HERE, "results")
EXAMPLE = os.path.join(REPO, "..", "shared", "videos", "example.avi")
PADDLEVIDEO = {"dygraph_1": 2.2, "dygraph_2": 1.6, "inference_1": 0.72, "inference_2": 0.54}
R50_CONFIG = os.path.join(REPO, "configs/recognition/tsm/tsm_k400_videos.yaml")
# The full run and --smoke: default step/run counts, the R50 parts' model (overrides of R50_CONFIG)
# and input, the R50 training list (copies of the video, workers).
FULL = {"iters": 6, "rounds": 3, "r50_iters": 3, "test_runs": 4, "mem_epochs": 12, "mem_iters": 4,
        "label": "TSM-R50 8x224", "overrides": [], "num_seg": 8, "size": 224, "copies": 16,
        "workers": 4}
SMOKE = {"iters": 2, "rounds": 1, "r50_iters": 2, "test_runs": 1, "mem_epochs": 3, "mem_iters": 1,
         "label": "TSM-R18 4x32 (smoke)",
         "overrides": ["MODEL.backbone.depth=18", "MODEL.head.in_channels=512",
                       "MODEL.backbone.num_seg=4", "PIPELINE.train.sample.num_seg=4",
                       "PIPELINE.train.transform.0.MultiScaleCrop.target_size=32"],
         "num_seg": 4, "size": 32, "copies": 4, "workers": 2}


def _sizes(args):
    return SMOKE if args.smoke else FULL


def _tiny_demo(out):
    from demo_set import make_demo_set
    return make_demo_set(out, tiny=True)


def _run_trainer(trainer):
    trainer.start()
    try:
        trainer.setup()
        trainer.resume()
        return trainer.fit()
    finally:
        trainer.close()


def _host_sync_trainer():
    """The training loop made to read every step's figures back on the host (the old way)."""
    from paddlevideo.tasks.train import Trainer

    class HostSyncEveryStep(Trainer):
        def train_step(self, *args):
            values = super().train_step(*args)
            values.numpy()                 # waits for the step, as float(loss) did
            return values
    return HostSyncEveryStep


def _train(config, overrides, iters, trainer_class=None):
    """One epoch of `iters` steps at the config's log_interval; step figures after the first."""
    from paddlevideo.tasks.train import Trainer
    from paddlevideo.utils.config import get_config
    cfg = get_config(config, overrides + ["epochs=1"])
    with tempfile.TemporaryDirectory() as out:
        result = _run_trainer((trainer_class or Trainer)(cfg, max_iters=iters, output_dir=out))
    steps = result["step_times"][1:]          # the first step pays for warm-up
    clips = sum(s[0] for s in steps)
    batch = sum(s[1] for s in steps)
    reader = sum(s[2] for s in steps)
    return {"steps_timed": len(steps), "batch_size": steps[0][0] if steps else None,
            "clips_per_sec": clips / batch, "sec_per_step": batch / len(steps),
            "reader_share": reader / batch, "num_workers": int(cfg.DATASET.num_workers),
            "threads": int(os.environ.get("OMP_NUM_THREADS", "1"))}


DEMO_CONFIG = "configs/recognition/tsm/tsm_demo.yaml"


def _with_demo_set(args, run):
    """run(overrides) on the demo set: data/demo (made if absent), or with --smoke a tiny set of
    its own in a temporary folder (4 segments, batch 2)."""
    os.chdir(REPO)
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="bench_demo_") as tmp:
            _tiny_demo(tmp)
            over = ["DATASET.batch_size=2", "MODEL.backbone.num_seg=4"]
            for mode, name in (("train", "train"), ("valid", "val")):
                over += [f"DATASET.{mode}.file_path={os.path.join(tmp, name + '.list')}",
                         f"DATASET.{mode}.data_prefix={tmp}", f"PIPELINE.{mode}.sample.num_seg=4"]
            return run(over)
    if not os.path.isfile(os.path.join(REPO, "data", "demo", "train.list")):
        subprocess.run([sys.executable, os.path.join(REPO, "data", "make_demo.py"), "--quiet"],
                       check=True)
    return run([])


def part_train_demo(args):
    return _with_demo_set(args, lambda over: _train(DEMO_CONFIG, over, args.iters))


def part_train_demo_sync(args):
    return _with_demo_set(args, lambda over: _train(DEMO_CONFIG, over, args.iters,
                                                    _host_sync_trainer()))


def _pss_mb(pid):
    """Proportional set size of a process in MB (shared pages split among their users)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _children(pid):
    found = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                found += [int(c) for c in f.read().split()]
        except OSError:                 # a thread that ended meanwhile
            pass
    return found


def _memory():
    """Live child processes of this one and the PSS of this process and of its descendants."""
    me, children = os.getpid(), _children(os.getpid())
    tree, pss = list(children), 0.0
    while tree:
        pid = tree.pop()
        try:
            pss += _pss_mb(pid)
            tree += _children(pid)
        except OSError:                 # ended meanwhile
            pass
    return {"children": len(children), "pss_main_mb": round(_pss_mb(me), 1),
            "pss_children_mb": round(pss, 1)}


def part_train_memory(args):
    from paddlevideo.tasks.train import Trainer
    from paddlevideo.utils.config import get_config
    rows = []

    class Watched(Trainer):
        def end_epoch(self, epoch, stats):
            super().end_epoch(epoch, stats)
            rows.append(dict(_memory(), epoch=epoch + 1))

    def run(over):
        cfg = get_config(DEMO_CONFIG, over + [f"epochs={args.mem_epochs}", "DATASET.num_workers=2"])
        with tempfile.TemporaryDirectory() as out:
            _run_trainer(Watched(cfg, validate=True, max_iters=args.mem_iters, output_dir=out))
        return rows

    _with_demo_set(args, run)
    main = [r["pss_main_mb"] for r in rows]
    later = main[1:] or main
    slope = float(np.polyfit(range(len(later)), later, 1)[0]) if len(later) > 1 else 0.0
    return {"epochs": rows, "after_training": _memory(), "steps_per_epoch": args.mem_iters,
            "pss_main_growth_mb_per_epoch": round(slope, 2)}


def part_train_r50(args):
    sizes = _sizes(args)
    if not os.path.isfile(EXAMPLE) and not args.smoke:
        return {"skipped": f"{EXAMPLE} not found"}
    with tempfile.TemporaryDirectory(prefix="bench_r50_") as tmp:
        video = os.path.abspath(EXAMPLE)
        if not os.path.isfile(video):       # --smoke without the real videos: a tiny demo one
            demo = _tiny_demo(os.path.join(tmp, "demo"))
            with open(os.path.join(demo, "train.list")) as f:
                video = os.path.join(demo, f.readline().split()[0])
        lst = os.path.join(tmp, "train.list")
        with open(lst, "w") as f:
            for i in range(sizes["copies"]):
                f.write(f"{video} {i % 4}\n")
        over = [f"DATASET.train.file_path={lst}", "DATASET.train.data_prefix=",
                "DATASET.batch_size=2", f"DATASET.num_workers={sizes['workers']}",
                "MODEL.backbone.pretrained=null", "MODEL.head.num_classes=4"] + sizes["overrides"]
        return _train(R50_CONFIG, over, args.r50_iters)


def _r50(args):
    """The R50 config's model (--smoke: TSM-R18 4x32), random weights, and one random clip."""
    import paddle
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config
    sizes = _sizes(args)
    paddle.seed(0)
    cfg = get_config(R50_CONFIG, sizes["overrides"])
    model = build_model(cfg.MODEL, load_pretrained=False)
    model.eval()
    shape = (1, sizes["num_seg"], 3, sizes["size"], sizes["size"])
    imgs = np.random.default_rng(0).standard_normal(shape).astype("float32")
    return model, imgs


def _time(fn, runs):
    """(median, sorted times) in seconds of `runs` calls of fn() after a warm-up."""
    from paddlevideo.utils.timing import time_calls
    times = sorted(time_calls(fn, runs))
    return times[len(times) // 2], times


def part_test_dygraph(args):
    import paddle
    from paddlevideo.tasks.runner import DygraphRunner
    model, imgs = _r50(args)
    run = DygraphRunner(model)
    x = paddle.to_tensor(imgs)
    median, times = _time(lambda: run(x), args.test_runs)
    probs = run(x)
    return {"sec_per_clip": median, "times": times, "threads": int(os.environ["OMP_NUM_THREADS"]),
            "probs": probs.tolist()}


def part_test_fast(args):
    from paddlevideo.tasks.runner import make_runner
    model, imgs = _r50(args)
    threads = int(os.environ["OMP_NUM_THREADS"])
    run = make_runner(model, list(imgs.shape[1:]), engine="inference", threads=threads)
    median, times = _time(lambda: run(imgs), args.test_runs)
    probs = run(imgs)
    run.close()
    return {"sec_per_clip": median, "times": times, "threads": threads, "probs": probs.tolist()}


PARTS = {"train_demo": (part_train_demo, None), "train_demo_sync": (part_train_demo_sync, None),
         "train_memory": (part_train_memory, None), "train_r50": (part_train_r50, None),
         "test_dygraph_1": (part_test_dygraph, 1), "test_dygraph_all": (part_test_dygraph, None),
         "test_fast_1": (part_test_fast, 1), "test_fast": (part_test_fast, None)}


def run_part(name, args):
    """Run one part in a child process with its thread count; return its JSON result."""
    from paddlevideo.utils.env import available_cores
    env = dict(os.environ)
    env.pop("PADDLEVIDEO_OMP_AUTO", None)
    env["OMP_NUM_THREADS"] = str(PARTS[name][1] or available_cores())
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--out", args.out]
    for key in ("iters", "r50_iters", "test_runs", "mem_epochs", "mem_iters"):
        cmd += [f"--{key}", str(getattr(args, key))]
    cmd += ["--smoke"] if args.smoke else []          # the child sees the run's settings
    t = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        return {"error": (r.stderr or r.stdout)[-1500:]}
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_sec"] = round(time.time() - t, 1)
    return result


def _median_round(runs):
    """The round with the median seconds per step, with every round's figure beside it."""
    good = [r for r in runs if "sec_per_step" in r]
    if not good:
        return runs[-1]
    best = sorted(good, key=lambda r: r["sec_per_step"])[(len(good) - 1) // 2]
    return dict(best, rounds_sec_per_step=[round(r["sec_per_step"], 4) for r in good])


def _rounds_text(r):
    n = len(r.get("rounds_sec_per_step", []))
    return f" (median of {n} rounds)" if n > 1 else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None,
                    help="demo training steps, first not timed (6; 2 with --smoke)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="alternating rounds of train_demo and train_demo_sync (3; 1 with --smoke)")
    ap.add_argument("--mem_epochs", type=int, default=None,
                    help="train_memory epochs (12; 3 with --smoke)")
    ap.add_argument("--mem_iters", type=int, default=None,
                    help="train_memory steps per epoch (4; 1 with --smoke)")
    ap.add_argument("--r50_iters", type=int, default=None,
                    help="TSM-R50 training steps (3; 2 with --smoke)")
    ap.add_argument("--test_runs", type=int, default=None,
                    help="timed forward passes per engine (4; 1 with --smoke)")
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=list(PARTS))
    ap.add_argument("--out", default=RESULTS, metavar="DIR",
                    help="folder for train_speed.{json,md} (default benchmarks/results)")
    ap.add_argument("--smoke", action="store_true",
                    help="TSM-R18 4x32, a tiny demo set, one or two steps and runs: checks that the "
                         "script runs end to end; its figures are meaningless")
    ap.add_argument("--child", choices=list(PARTS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = _sizes(args)
    for key in ("iters", "rounds", "r50_iters", "test_runs", "mem_epochs", "mem_iters"):
        if getattr(args, key) is None:
            setattr(args, key, sizes[key])
    if args.child:
        result = PARTS[args.child][0](args)
        print("RESULT " + json.dumps(result))
        return
    from paddlevideo.utils.env import available_cores
    results = {"machine": {"cores": available_cores(), "cpu": platform.processor() or
                           platform.machine(), "python": platform.python_version()},
               "command": "python benchmarks/train_speed.py " + " ".join(sys.argv[1:]),
               "model": sizes["label"], "smoke": args.smoke}
    paired = [name for name in ("train_demo", "train_demo_sync") if name in args.parts]
    rounds = {name: [] for name in paired}
    for r in range(args.rounds if paired else 0):   # side by side: A B A B ...
        for name in paired:
            print(f"running {name} (round {r + 1}/{args.rounds}) ...", flush=True)
            rounds[name].append(run_part(name, args))
    for name, runs in rounds.items():
        results[name] = _median_round(runs)
    for name in args.parts:
        if name not in paired:
            print(f"running {name} ...", flush=True)
            results[name] = run_part(name, args)
    demo, sync = results.get("train_demo", {}), results.get("train_demo_sync", {})
    if "sec_per_step" in demo and "sec_per_step" in sync:
        results["host_sync_step_ratio"] = sync["sec_per_step"] / demo["sec_per_step"]
    fast, dyg = results.get("test_fast", {}), results.get("test_dygraph_all", {})
    if "probs" in fast and "probs" in dyg:
        fast_probs, dyg_probs = np.array(fast["probs"]), np.array(dyg["probs"])
        results["test_fast_vs_dygraph_max_prob_diff"] = float(np.max(np.abs(fast_probs -
                                                                            dyg_probs)))
        results["test_fast_same_top1"] = bool(np.argmax(fast_probs) == np.argmax(dyg_probs))
        top2 = np.sort(dyg_probs.reshape(-1))[-2:]
        results["test_fast_top1_margin"] = float(top2[1] - top2[0])  # dygraph's best minus next
    for part in results.values():
        if isinstance(part, dict):
            part.pop("probs", None)
    results["paddlevideo_reference_sec_per_clip"] = PADDLEVIDEO
    lines = ["| measurement | value |", "| --- | --- |"]
    for name in ("train_demo", "train_demo_sync", "train_r50"):
        r = results.get(name, {})
        if "clips_per_sec" in r:
            lines.append(f"| {name}: clips/s (batch {r['batch_size']}, {r['threads']} threads, "
                         f"{r['num_workers']} workers) | {r['clips_per_sec']:.2f} |")
            lines.append(f"| {name}: reader_cost / batch_cost | {100 * r['reader_share']:.2f}% |")
            lines.append(f"| {name}: seconds per step{_rounds_text(r)} | "
                         f"{r['sec_per_step']:.3f} |")
        elif r:
            lines.append(f"| {name} | {r.get('skipped') or 'failed: ' + r.get('error', '')[-200:]} |")
    if "host_sync_step_ratio" in results:
        lines.append(f"| demo config: step time with a host read every step / without (side by "
                     f"side, {args.rounds} rounds) | {results['host_sync_step_ratio']:.3f} |")
    memory = results.get("train_memory", {})
    if "epochs" in memory:
        first, last, end = memory["epochs"][0], memory["epochs"][-1], memory["after_training"]
        lines.append(f"| demo config + validation, {len(memory['epochs'])} epochs x "
                     f"{memory['steps_per_epoch']} steps, 2 workers: processes alive after epoch 1 "
                     f"/ {last['epoch']} / after training | {first['children']} / "
                     f"{last['children']} / {end['children']} |")
        lines.append(f"| same: PSS of the training process after epoch 1 / {last['epoch']} "
                     f"(growth per epoch from epoch 2), MB | {first['pss_main_mb']:.0f} / "
                     f"{last['pss_main_mb']:.0f} ({memory['pss_main_growth_mb_per_epoch']:+.1f}) |")
    elif memory:
        lines.append(f"| train_memory | failed: {memory.get('error', '')[-200:]} |")
    for name, label in (("test_dygraph_1", "dygraph, 1 thread"),
                        ("test_dygraph_all", "dygraph, all cores"),
                        ("test_fast_1", "--test engine, 1 thread"),
                        ("test_fast", "--test engine, all cores")):
        r = results.get(name, {})
        if "sec_per_clip" in r:
            lines.append(f"| {sizes['label']} batch 1, {label} ({r['threads']} threads): s/clip | "
                         f"{r['sec_per_clip']:.3f} |")
    if "sec_per_clip" in fast:
        base = PADDLEVIDEO["dygraph_1"]
        lines.append(f"| --test speed-up over PaddleVideo's test (dygraph, 1 thread, "
                     f"{base} s) | {base / fast['sec_per_clip']:.2f}x |")
        if "sec_per_clip" in results.get("test_dygraph_1", {}):
            ours = results["test_dygraph_1"]["sec_per_clip"]
            lines.append(f"| --test speed-up over dygraph 1 thread measured here | "
                         f"{ours / fast['sec_per_clip']:.2f}x |")
    if "test_fast_vs_dygraph_max_prob_diff" in results:
        lines.append(f"| --test engine vs dygraph: max probability difference, same top-1 | "
                     f"{results['test_fast_vs_dygraph_max_prob_diff']:.2e}, "
                     f"{results['test_fast_same_top1']} |")
    table = "\n".join(lines)
    print(table)
    smoke = ("Smoke run (--smoke): tiny model and data, one or two steps and runs; the figures "
             "are meaningless.\n\n" if args.smoke else "")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train_speed.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "train_speed.md"), "w") as f:
        f.write(f"# Training and test speed\n\n`{results['command']}` on "
                f"{results['machine']['cores']} cores ({results['machine']['cpu']}).\n\n"
                f"{smoke}{table}\n")


if __name__ == "__main__":
    main()
