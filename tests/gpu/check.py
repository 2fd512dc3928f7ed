#!/usr/bin/env python3
"""The GPU check's steps (tests/gpu/run.sh builds what they need, then runs this).

    .venv/bin/python tests/gpu/check.py OUT_DIR [--cpu-dry-run]

Each step records pass/fail and its numbers in OUT_DIR/gpu-check.json and OUT_DIR/gpu-check.md,
rewritten after every step (a later timeout still leaves the earlier results), and a failing
step never stops the next ones. `--cpu-dry-run` runs the same steps on the CPU at tiny sizes, so
the plumbing is tested on machines without a GPU (the GPU-only criteria are then not applied).
"""

import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))

OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.join(ROOT, "target", "gpu-check")
DRY = "--cpu-dry-run" in sys.argv
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
EXAMPLES = os.path.join(TARGET, "release", "examples")
NPROC = os.cpu_count() or 2
DEV = "cpu" if DRY else "cuda"
# Sizes: the on a GPU; tiny on the CPU (plumbing only).
TRAIN = dict(arch="resnet34", size=32, bs=4, iters=2) if DRY else dict(arch="resnet34", size=224, bs=64, iters=20)
PIPE = dict(per_class=4, size=32, bs=8) if DRY else dict(per_class=300, size=224, bs=64)
LESSON = dict(per_class=8, size=32, bs=16) if DRY else dict(per_class=1000, size=64, bs=64)

results = []
info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "mode": "cpu-dry-run" if DRY else "gpu"}


def save():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "gpu-check.json"), "w") as f:
        json.dump({"info": info, "checks": results}, f, indent=1)
    lines = [f"GPU check, {info['date']}, {info.get('gpu', 'no GPU')} ({info['mode']})", "",
             "| check | result | numbers |", "|---|---|---|"]
    for r in results:
        nums = ", ".join(f"{k} {v}" for k, v in r["numbers"].items())
        lines.append(f"| {r['name']} | {'pass' if r['ok'] else 'FAIL'} | {nums.replace('|', '/')} |")
    with open(os.path.join(OUT, "gpu-check.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def step(name):
    """Runs the decorated function now as one check: it returns (ok, numbers); an exception is a
    failure with its message. Prints one line per check."""
    def run(fn):
        t0 = time.time()
        try:
            ok, numbers = fn()
        except Exception as e:  # a failure is a result too
            ok, numbers = False, {"error": f"{type(e).__name__}: {e}"[:600]}
            traceback.print_exc()
        numbers["seconds"] = round(time.time() - t0, 1)
        results.append({"name": name, "ok": bool(ok), "numbers": numbers})
        print(f"[{'pass' if ok else 'FAIL'}] {name}: {json.dumps(numbers)}", flush=True)
        save()
    return run


# ---------------------------------------------------------------- measuring processes

def tree(pid):
    """pid and all its descendants (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def gpu_mem_by_pid():
    r = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True, timeout=20)
    mem = {}
    for line in r.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            mem[int(parts[0])] = mem.get(int(parts[0]), 0) + int(parts[1])
    return mem


def mem_mb(pid):
    """Memory of a process tree: GPU memory (nvidia-smi) on a GPU, resident memory on a dry run."""
    pids = tree(pid)
    if DRY:
        total = 0
        for p in pids:
            try:
                with open(f"/proc/{p}/status") as f:
                    total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) // 1024
            except (OSError, StopIteration):
                pass
        return total
    mem = gpu_mem_by_pid()
    if not mem:
        # in some containers nvidia-smi lists no processes: the whole GPU's memory in use then
        # (the checks run one after the other, so it is still this step's)
        info["gpu memory"] = "memory.used of the whole GPU (nvidia-smi lists no processes here)"
        r = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=20)
        return int(r.stdout.split()[0]) if r.stdout.split() and r.stdout.split()[0].isdigit() else 0
    info["gpu memory"] = "nvidia-smi --query-compute-apps, the process and its children"
    return sum(mem.get(p, 0) for p in pids)


def run_measured(cmd, env=None, timeout=300):
    """Runs cmd, sampling its memory (mem_mb) every 0.2 s; returns (the last JSON line of its
    stdout, peak MB). Raises with its stderr when it fails."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], mem_mb(p.pid))
            except Exception:
                pass
            stop.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"{os.path.basename(cmd[0])} ran past {timeout} s: {err[-300:]}")
    finally:
        stop.set()
        t.join()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} exited {p.returncode}: {(err or out)[-400:].strip()}")
    js = [l for l in out.splitlines() if l.startswith("{")]
    if not js:
        raise RuntimeError(f"no JSON line from {cmd[0]}: {out[-300:]}")
    return json.loads(js[-1]), peak[0]


def peer_python():
    """A Python whose torch sees the GPU (the benchmark environment, else the project's own venv,
    which has full PyTorch after a CUDA install), or None."""
    test = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    if DRY:
        test = "import torch"
    for py in (os.path.join(ROOT, ".venv-bench", "bin", "python"), os.path.join(ROOT, ".venv", "bin", "python"),
               sys.executable):
        if os.path.exists(py) and subprocess.run([py, "-c", test], capture_output=True).returncode == 0:
            return py
    return None


# ---------------------------------------------------------------- the checks

@step("device_info() (dry run: the CPU)" if DRY else "device_info() sees the GPU")
def _():
    if not DRY:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True)
        info["gpu"] = q.stdout.strip().splitlines()[0] if q.stdout.strip() else "GPU (nvidia-smi gave no name)"
        save()
    r = subprocess.run([os.path.join(TARGET, "release", "fastai-device")], capture_output=True, text=True, timeout=120)
    line = (r.stdout + r.stderr).strip()
    ok = r.returncode == 0 and (line.startswith("CPU") if DRY else line.startswith("CUDA"))
    return ok, {"fastai-device": line[:300]}


train_runs = {}
PEER = peer_python()
for label, ours_flags, peer_flags in [("fp32", [], []), ("to_fp16", ["--fp16"], ["--amp"]),
                                      ("to_fp16 + channels-last", ["--fp16", "--channels-last"], ["--amp", "--channels-last"])]:
    @step(f"train step {TRAIN['arch']} {TRAIN['size']}px bs {TRAIN['bs']}, {label}")
    def _():
        args = [TRAIN["arch"], str(TRAIN["size"]), str(TRAIN["bs"]), "train", str(TRAIN["iters"]), str(NPROC),
                "--device", DEV]
        try:
            ours, peak = run_measured([os.path.join(EXAMPLES, "bench_train"), *args, *ours_flags])
        except Exception as e:  # PyTorch's number is still worth having
            ours, peak = None, 0
            nums, ok = {"error": f"{e}"[:400]}, False
        if ours:
            train_runs[label] = (ours, peak)
            nums = {"img/s": ours["img_per_s"], "peak MB": peak, "loss": ours["loss"]}
            if "autocast_kind" in ours:
                nums["autocast dtype"] = ours["autocast_kind"]
            ok = ours["loss"] is not None
        if ours and label != "fp32":
            # autocast really active: half-precision outputs, and (on a GPU) less time and memory
            want = "Float" if DRY else "Half"
            ok = ok and ours.get("autocast_kind") == want
            fp32, peak32 = train_runs.get("fp32", ({}, 0))
            if fp32:
                nums["vs fp32 speed"] = f"{ours['img_per_s'] / fp32['img_per_s']:.2f}x"
                nums["vs fp32 memory"] = f"{peak / max(peak32, 1):.2f}x"
                if not DRY:
                    ok = ok and ours["img_per_s"] > fp32["img_per_s"] and peak < peak32
        if PEER:
            try:
                peer, ppeak = run_measured([PEER, os.path.join(ROOT, "bench", "torch_step.py"), *args[:-2],
                                            "--device", DEV, *peer_flags])
                if "peak_mem_mb" in peer:
                    nums["PyTorch allocated MB"] = peer["peak_mem_mb"]
                nums.update({"PyTorch img/s": peer["img_per_s"], "PyTorch peak MB": ppeak, "PyTorch loss": peer.get("loss")})
                if ours:
                    nums["ours/PyTorch"] = f"{ours['img_per_s'] / peer['img_per_s']:.2f}"
            except Exception as e:
                nums["PyTorch"] = f"failed: {e}"[:300]
        else:
            nums["PyTorch"] = "no Python torch with CUDA here (.venv-bench, .venv or python3)"
        return ok, nums


@step(f"whole pipeline (loader + training) resnet34 {PIPE['size']}px, to_fp16, 1 epoch")
def _():
    env = dict(os.environ, BENCH_DEVICE=DEV, BENCH_ARCH="resnet34", BENCH_FP16="1")
    out, peak = run_measured([os.path.join(EXAMPLES, "bench_finetune"), str(PIPE["per_class"]), str(PIPE["size"]),
                              str(PIPE["bs"]), str(NPROC)], env=env, timeout=240)
    ok = out.get("device", "").lower().startswith(DEV)
    return ok, {"img/s": out["img_per_s"], "images": out["train"] + out["valid"], "epoch s": out["seconds"],
                "peak MB": peak, "device": out.get("device")}


AUG = dict(bs=4, size=32, src=40, iters=1) if DRY else dict(bs=64, size=224, src=256, iters=20)


@step(f"batch augmentation on the device (render_batch, bs {AUG['bs']}, {AUG['src']} -> {AUG['size']} px)")
def _():
    out, _ = run_measured([os.path.join(EXAMPLES, "bench_augment"), str(AUG["bs"]), str(AUG["size"]), str(AUG["src"]),
                           str(AUG["iters"]), "--device", DEV])
    ok = out["device"].lower().startswith(DEV) and out["render_batch_img_per_s"] > 0
    return ok, {"render_batch img/s": out["render_batch_img_per_s"],
                "render (1 CPU thread) img/s": out["render_cpu_1_thread_img_per_s"], "device": out["device"]}


LOAD = dict(n=16, bs=8, epochs=1) if DRY else dict(n=512, bs=64, epochs=2)


@step(f"loader to the device: per-image vs batch augmentation ({LOAD['n']} JPEGs 500x375 -> 224 px, bs {LOAD['bs']})")
def _():
    photos = os.path.join(TARGET, "gpu-check-photos", str(LOAD["n"]))
    if not os.path.isdir(photos):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_photos.py"), photos, "--n", str(LOAD["n"])],
                       check=True, capture_output=True, timeout=300)
    nums = {}
    for on in ("workers", "device"):
        r = subprocess.run([os.path.join(EXAMPLES, "bench_loader"), photos, str(NPROC), str(LOAD["bs"]), str(LOAD["epochs"]),
                            on, DEV], capture_output=True, text=True, timeout=300, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"bench_loader {on}: {r.stderr[-400:]}")
        m = re.search(r"fastai-rs loader: ([0-9.]+) img/s", r.stdout)
        nums[f"augment on {on} img/s"] = float(m.group(1))
    nums["workers"] = NPROC
    return all(v > 0 for v in nums.values()), nums


# ---------------------------------------------------------------- in the kernel

kernel_a = None


def start_kernel():
    from helpers import KERNEL, Kernel
    from jupyter_client.kernelspec import KernelSpecManager
    info["kernel"] = KernelSpecManager().get_kernel_spec(KERNEL).argv[0]
    env = dict(os.environ)
    if DRY:
        env["FASTAI_DEVICE"] = "cpu"
    return Kernel(env=env)


def must(cell, what):
    if cell.status != "ok":
        c = cell.reply["content"]
        raise RuntimeError(f"{what}: {c.get('ename')}: {c.get('evalue', '')[:300]} {cell.stderr[-300:]}")
    return cell


def lesson_cells():
    """The offline lesson's code up to and including its first fit, with our sizes."""
    import nbformat
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "lesson1-offline.ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    end = next(i for i, s in enumerate(code) if "fit_one_cycle" in s)
    cells = [s for s in code[:end + 1] if "show_batch" not in s]  # no figures needed here
    params = "\n".join(f"let {k}: usize = {v};" for k, v in LESSON.items())
    return cells[:1] + [params] + cells[1:]


expect_dev = "Cpu" if DRY else "Cuda"
mem0 = None


def kernel_pid(k):
    """The kernel's process id (its cell process is a child of it)."""
    prov = getattr(k.manager, "provisioner", None)
    proc = getattr(prov, "process", None)
    return getattr(proc, "pid", None) or getattr(prov, "pid", None)


@step(f"offline lesson's first fit (lesson1-offline, {LESSON['per_class']} per class, {LESSON['size']}px)")
def _():
    global kernel_a, mem0
    kernel_a = start_kernel()
    mem0 = mem_mb(kernel_pid(kernel_a))
    t0 = time.time()
    for src in lesson_cells():
        must(kernel_a.run(src), src.splitlines()[0][:60])
    fit_s = time.time() - t0
    cell = must(kernel_a.run('let (_, m) = learn.validate()?;\nprintln!("device {:?} error_rate {:.4}", learn.device(), m[0].1);'),
                "validate")
    m = re.search(r"device (\S+) error_rate ([\d.]+)", cell.stdout)
    dev, err = m.group(1), float(m.group(2))
    ok = dev.startswith(expect_dev) and (DRY or err < 0.3)
    return ok, {"device": dev, "error_rate": err, "cells+fit s": round(fit_s, 1)}


@step("interrupt during a fit keeps the model")
def _():
    if kernel_a is None:
        raise RuntimeError("no kernel (the lesson step failed to start one)")
    threading.Timer(8.0, kernel_a.manager.interrupt_kernel).start()
    cell = kernel_a.run("learn.fit_one_cycle(200, None)?;")
    c = cell.reply["content"]
    interrupted = cell.status == "error" and c.get("ename") == "Interrupted"
    after = must(kernel_a.run('let (_, m) = learn.validate()?;\nprintln!("device {:?} error_rate {:.4}", learn.device(), m[0].1);'),
                 "validate after the interrupt")
    m = re.search(r"device (\S+) error_rate ([\d.]+)", after.stdout)
    ok = interrupted and "kept" in c.get("evalue", "") and m and m.group(1).startswith(expect_dev)
    return ok, {"reply": f"{c.get('ename', cell.status)}: {c.get('evalue', '')[:120]}",
                "after": m.group(0) if m else after.stdout[-120:]}


@step("GPU memory returns after drop(learn)" if not DRY else "memory after drop(learn) (RSS on the dry run)")
def _():
    if kernel_a is None:
        raise RuntimeError("no kernel")
    pid = kernel_pid(kernel_a)
    held = mem_mb(pid)
    must(kernel_a.run("drop(learn);"), "drop(learn)")
    time.sleep(1)
    dropped = mem_mb(pid)
    # the same again: a second learner must reuse what the first freed, not add to it
    must(kernel_a.run("let data = ImageDataBunch::from_name_re(&path, &fnames, pat, DataOptions::default()"
                      ".tfms(get_transforms()).size(size).bs(bs))?.normalize(imagenet_stats());\n"
                      "let mut learn = cnn_learner(data, models::mobilenet_v2, &[error_rate])?;\n"
                      "learn.fit_one_cycle(1, None)?;"), "a second learner")
    held2 = mem_mb(pid)
    must(kernel_a.run("drop(learn);"), "drop again")
    time.sleep(1)
    dropped2 = mem_mb(pid)
    nums = {"held MB": held, "after drop MB": dropped, "second learner MB": held2, "after 2nd drop MB": dropped2}
    freed = held - dropped
    # returns: at least half of what the learner held is given back, and the second round does not grow
    ok = freed >= 0.5 * max(held - (mem0 or 0), 1) and dropped2 <= dropped + 256
    return (ok or DRY), nums


@step("two kernels share the GPU")
def _():
    kb = start_kernel()
    try:
        code = ("let mut fs = Vec::new();\n"
                "for class in std::fs::read_to_string(fashion_mnist_dir().join(\"classes.txt\"))?.lines() {\n"
                "    let mut f = get_image_files(fashion_mnist_dir().join(\"train\").join(class))?; f.truncate(%d); fs.extend(f);\n"
                "}\n"
                "let d2 = ImageDataBunch::from_name_re(&fashion_mnist_dir(), &fs, r\"/([^/]+)_\\d+.png$\", "
                "DataOptions::default().size(%d).bs(%d))?.normalize(imagenet_stats());\n"
                "let mut l2 = cnn_learner(d2, models::mobilenet_v2, &[error_rate])?;\n"
                "l2.fit_one_cycle(1, None)?;\n"
                "let (_, m2) = l2.validate()?;\n"
                "println!(\"device {:?} error_rate {:.4}\", l2.device(), m2[0].1);") % (
                    LESSON["per_class"] // 2, LESSON["size"], LESSON["bs"])
        ks = [k for k in (kernel_a, kb) if k is not None]
        cells = [None] * len(ks)
        ts = [threading.Thread(target=lambda i=i, k=k: cells.__setitem__(i, k.run(code))) for i, k in enumerate(ks)]
        t0 = time.time()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        nums, ok = {"kernels": len(ks), "both s": round(time.time() - t0, 1)}, len(ks) == 2
        for i, c in enumerate(cells):
            m = re.search(r"device (\S+) error_rate ([\d.]+)", c.stdout) if c.status == "ok" else None
            nums[f"kernel {i + 1}"] = m.group(0) if m else f"{c.status}: {c.reply['content'].get('evalue', '')[:150]}"
            ok = ok and bool(m) and m.group(1).startswith(expect_dev)
        return ok, nums
    finally:
        kb.close()


if kernel_a is not None:
    kernel_a.close()
failed = [r["name"] for r in results if not r["ok"]]
print(f"{len(results) - len(failed)}/{len(results)} checks passed; results in {OUT}/gpu-check.json and gpu-check.md")
sys.exit(1 if failed else 0)
