#!/usr/bin/env python3
"""All benchmarks, ours next to the peer a user would pick instead, in one run on this machine.

    bench/run.sh [--quick] [--only CASE ...] [--write BENCHMARKS.md]

(bench/run.sh installs the peers first, then runs this with the project's venv.) Every
measurement runs in a process of its own, one after the other, never two at once; its peak
memory is the peak of the summed resident memory of its process tree (workers included), sampled
every 50 ms. The table says, for each case, our number, the peer's, and how many times faster we
are (>1: we are faster; for memory, how many times less we use).

Cases: training step (resnet18/34 at 224 px bs 16, mobilenet_v2 at 64 px bs 64; the whole model
trainable), evaluation (the same models, no gradients), data loader (decode + augment + batch at
224 px on real-size JPEGs, same workers), one epoch of the offline lesson's fine-tune (time and
error rate, vs Python fastai), notebook latency (kernel start, a trivial cell, the first cell that
uses the library) vs the stock evcxr_jupyter kernel.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from memory import TreeSampler  # noqa: E402

EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
PEER_PY = os.path.join(ROOT, ".venv-bench", "bin", "python")
OUR_PY = os.path.join(ROOT, ".venv", "bin", "python")
THREADS = os.cpu_count()


def measure(cmd, timeout=3600, env=None):
    """Runs `cmd`, returns (the last JSON line it printed, as a dict, with `peak_mb` added)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         env=dict(os.environ, **(env or {})))
    sampler = TreeSampler(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"{' '.join(cmd)} ran past {timeout} s")
    finally:
        peak = sampler.stop()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{err[-2000:]}")
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no result:\n{out[-1000:]}\n{err[-1000:]}")
    res = json.loads(lines[-1])
    res["peak_mb"] = peak
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def row(case, unit, ours, peer, peer_name, higher_is_better, ours_mb=None, peer_mb=None, note=""):
    if ours is None or peer is None:
        speed = None
    else:
        speed = ours / peer if higher_is_better else peer / ours
    return {"case": case, "unit": unit, "ours": ours, "peer": peer, "peer_name": peer_name, "speedup": speed,
            "ours_mb": ours_mb, "peer_mb": peer_mb, "note": note}


def training(quick):
    rows = []
    cases = [("resnet18", 224, 16, 6), ("resnet34", 224, 16, 4), ("mobilenet_v2", 64, 64, 10)]
    for mode in ("train", "eval"):
        for arch, size, bs, iters in cases:
            if quick:
                iters = 2
            if mode == "eval":
                iters *= 2
            args = [arch, str(size), str(bs), mode, str(iters), str(THREADS)]
            ours = measure([os.path.join(EXAMPLES, "bench_train"), *args])
            peer = measure([PEER_PY, os.path.join(HERE, "torch_step.py"), *args])
            what = "training step" if mode == "train" else "evaluation"
            rows.append(row(f"{what}, {arch} {size} px bs {bs}", "img/s", ours["img_per_s"], peer["img_per_s"],
                            peer["impl"], True, ours["peak_mb"], peer["peak_mb"]))
            print_row(rows[-1])
    return rows


def loader(quick):
    photos = os.path.join(ROOT, "target", "bench", "photos")
    if not os.path.isdir(photos):
        subprocess.run([OUR_PY, os.path.join(HERE, "make_photos.py"), photos, "--n", "512"], check=True)
    args = [photos, "--workers", str(THREADS), "--bs", "64"]
    ours = measure([PEER_PY, os.path.join(HERE, "loader.py"), *args, "--side", "ours"])
    peer = measure([PEER_PY, os.path.join(HERE, "loader.py"), *args, "--side", "torchvision"])
    r = row(f"data loader, {ours['images']} JPEGs 500x375 -> 224 px, {THREADS} workers", "img/s",
            ours["img_per_s"], peer["img_per_s"], peer["impl"], True, ours["peak_mb"], peer["peak_mb"])
    print_row(r)
    return [r]


def finetune(quick):
    per_class = "60" if quick else "300"
    args = [per_class, "64", "64", str(THREADS)]
    ours = measure([os.path.join(EXAMPLES, "bench_finetune"), *args])
    peer = measure([PEER_PY, os.path.join(HERE, "finetune.py"), *args])
    what = f"fine-tune epoch, Fashion-MNIST {ours['train']}+{ours['valid']} imgs 64 px, mobilenet_v2"
    rows = [
        row(what, "s", ours["seconds"], peer["seconds"], peer["impl"], False, ours["peak_mb"], peer["peak_mb"]),
        row("  error rate after that epoch", "", ours["error_rate"], peer["error_rate"], peer["impl"], False,
            note="lower is better; one epoch, one seed: noisy"),
    ]
    for r in rows:
        print_row(r)
    return rows


def kernels(quick):
    out = subprocess.run([OUR_PY, os.path.join(HERE, "kernels.py")], capture_output=True, text=True, cwd=ROOT,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"bench/kernels.py failed:\n{out.stderr[-3000:]}")
    res = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    ours, stock = res[0], res[1]
    name = stock["kernel"]
    cold = stock.get("lib_cell_cold_s")
    rows = [
        row("kernel start to first reply", "s", ours["start_s"], stock["start_s"], name, False),
        row("trivial cell (1 + 1), median of 5", "s", ours["trivial_s"], stock["trivial_s"], name, False),
        row("first library cell after a fresh start (start + cell)", "s", ours["start_lib_s"] + ours["lib_cell_s"],
            stock["start_lib_s"] + stock["lib_cell_s"], name, False, ours["peak_rss_mb"], stock["peak_rss_mb"],
            note="stock: `:dep` on evcxr's warm compilation cache"),
    ]
    if cold is not None or "cold_error" in stock:
        rows.append(row("  the same, stock on an empty cache (first ever)", "s", None, cold, name, False,
                        note=stock.get("cold_error", "")))
    rows.append(row("first library cell once the kernel has started up (cell only)", "s", ours["lib_cell_ready_s"],
                    stock["lib_cell_ready_s"], name, False, note="after the trivial cells; stock: warm cache"))
    for r in rows:
        print_row(r)
    return rows


CASES = {"training": training, "loader": loader, "finetune": finetune, "kernels": kernels}


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if v < 1 else f"{v:.3g}" if v < 100 else f"{v:.0f}"
    return str(v)


def print_row(r):
    sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
    mem = "" if r["ours_mb"] is None else f"{r['ours_mb']:>7} MB {r['peer_mb']:>7} MB"
    print(f"{r['case'][:66]:<66} {fmt(r['ours']):>8} {fmt(r['peer']):>8} {r['unit']:<5} {sp:>7}  {mem}", flush=True)


def versions():
    def cmd(*c):
        try:
            return subprocess.run(c, capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError:
            return "?"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    peer = cmd(PEER_PY, "-c", "import torch, torchvision, fastai; print(torch.__version__, torchvision.__version__, fastai.__version__)").split()
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    tch = re.search(r'name = "tch"\nversion = "([^"]+)"', lock)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu}, {os.cpu_count()} CPUs, {mem} GiB, {platform.system()} {platform.release()}",
        "threads": THREADS,
        "ours": f"fastai-rs (tch {tch.group(1) if tch else '?'}, libtorch {peer[0] if peer else '?'}), {cmd('rustc', '--version')}",
        "peers": f"PyTorch {peer[0] if peer else '?'}, torchvision {peer[1] if len(peer) > 1 else '?'}, "
                 f"fastai {peer[2] if len(peer) > 2 else '?'}, evcxr_jupyter 0.22.0",
    }


def markdown(info, rows, command):
    lines = [f"Measured {info['date']} with `{command}`.", "",
             f"- Machine: {info['machine']}; torch threads and loader workers: {info['threads']}",
             f"- Ours: {info['ours']}", f"- Peers: {info['peers']}", "",
             "| case | ours | peer | unit | speed-up | peak MB ours | peak MB peer | peer |",
             "|---|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['case'].strip()}{note} | {fmt(r['ours'])} | {fmt(r['peer'])} | {r['unit']} | {sp} | "
                     f"{fmt(r['ours_mb'])} | {fmt(r['peer_mb'])} | {r['peer_name']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer iterations and images (a smoke run, numbers noisy)")
    ap.add_argument("--only", nargs="+", choices=list(CASES), help="run only these groups")
    ap.add_argument("--write", metavar="FILE", help="put the table into FILE between the bench markers")
    a = ap.parse_args()
    info = versions()
    print(f"{info['date']}\n{info['machine']}\nours:  {info['ours']}\npeers: {info['peers']}\n")
    print(f"{'case':<66} {'ours':>8} {'peer':>8} {'unit':<5} {'speedup':>7}  {'peak mem ours / peer'}")
    rows, failures = [], []
    for name in a.only or list(CASES):
        try:
            rows += CASES[name](a.quick)
        except Exception as e:  # one failed group does not hide the others
            failures.append(f"{name}: {e}")
            print(f"{name}: FAILED: {e}", file=sys.stderr, flush=True)
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench", "latest.json"), "w") as f:
        json.dump({"info": info, "rows": rows, "failures": failures}, f, indent=1)
    command = "bench/run.sh" + (" --quick" if a.quick else "") + (" --only " + " ".join(a.only) if a.only else "")
    if a.write:
        text = open(a.write).read()
        begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
        if begin not in text or end not in text:
            sys.exit(f"{a.write} has no {begin} ... {end} markers to put the table between")
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        with open(a.write + ".tmp", "w") as f:
            f.write(head + begin + "\n" + markdown(info, rows, command) + end + tail)
        os.replace(a.write + ".tmp", a.write)
        print(f"\nwrote the table into {a.write}")
    if failures:
        sys.exit("some benchmarks failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
