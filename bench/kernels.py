#!/usr/bin/env python3
"""Notebook latency of our kernel next to the stock evcxr_jupyter, through a real Jupyter client.

    .venv/bin/python bench/kernels.py [--evcxr PATH] [--cold-timeout S]

For each kernel, from a user's point of view: start (process launch to the first kernel_info
reply), a trivial cell (`1 + 1`, median of 5 after the first), and the first cell that uses the
library, twice: counted from the kernel's launch (someone who opens a notebook and runs it at
once), and once the kernel has done its start-up work (after the trivial cells: someone who reads
first). Ours preloads the library at start-up and the cell just uses it; the stock kernel's cell
has to `:dep` the library, which compiles it and libtorch's bindings.
Also the peak resident memory of the kernel's process tree (the kernel plus the process that runs
the cells), sampled every 50 ms. Stock evcxr runs with its compilation cache (`:cache`) in a folder
of its own; the first library cell is measured once on an empty cache ("cold", skipped when the
cache already holds it) and once on the warm cache, in a new kernel. Prints JSON lines.
"""

import argparse
import json
import os
import statistics
import sys
import time

from jupyter_client import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import TreeSampler  # noqa: E402

LIB_CELL_OURS = "let t = get_transforms();\nformat!(\"{} {:?}\", t.max_rotate, device())"


def lib_cell_stock():
    """The stock kernel knows nothing of the library: the cell adds it as a dependency first."""
    lib = os.path.join(ROOT, "lib")
    return f':dep fastai = {{ path = "{lib}" }}\nuse fastai::vision::*;\n' + LIB_CELL_OURS


def run_cell(kc, code, timeout):
    t0 = time.perf_counter()
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
    secs = time.perf_counter() - t0
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code!r}: {reply['content']}")
    return secs


def session(km_factory, lib_cell, timeout=900, trivial=True):
    """Starts a kernel, times start-up, trivial cells and the first library cell; returns a dict."""
    km = km_factory()
    out = {}
    t0 = time.perf_counter()
    km.start_kernel()
    sampler = TreeSampler(km.provisioner.process.pid)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=timeout)
        out["start_s"] = time.perf_counter() - t0
        if trivial:
            first = run_cell(kc, "1 + 1", timeout)
            rest = [run_cell(kc, "1 + 1", timeout) for _ in range(5)]
            out["trivial_first_s"] = first
            out["trivial_s"] = statistics.median(rest)
            # The kernel has done its start-up work by now (a user reading the notebook's first
            # cells): the first cell that uses the library, on its own.
            out["lib_cell_ready_s"] = run_cell(kc, lib_cell, timeout)
        else:
            out["lib_cell_s"] = run_cell(kc, lib_cell, timeout)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
        out["peak_rss_mb"] = sampler.stop()
    return out


def ours():
    def factory():
        return KernelManager(kernel_name="fastai-rust")
    a = session(factory, LIB_CELL_OURS, trivial=True)
    b = session(factory, LIB_CELL_OURS, trivial=False)
    return {"kernel": "fastai-kernel", **a, "lib_cell_s": b["lib_cell_s"], "start_lib_s": b["start_s"],
            "peak_rss_mb": max(a["peak_rss_mb"], b["peak_rss_mb"])}


def libtorch_from_cargo_config():
    """The LIBTORCH that install.sh wrote into .cargo/config.toml."""
    with open(os.path.join(ROOT, ".cargo", "config.toml")) as f:
        for line in f:
            if line.strip().startswith("LIBTORCH"):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit("LIBTORCH is not set and .cargo/config.toml has none: run ./install.sh first")


def stock(exe, state_dir, cold_timeout):
    """evcxr_jupyter, started as its kernelspec would, with a cache folder and config of our own."""
    libtorch = os.environ.get("LIBTORCH") or libtorch_from_cargo_config()
    conf = os.path.join(state_dir, "config")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "init.evcxr"), "w") as f:
        f.write(":cache 8000\n")  # MiB; evcxr's own compilation cache, so later kernels reuse builds
    # A kernelspec of its own (as `evcxr_jupyter --install` would write, but outside the user's
    # Jupyter folders), found through JUPYTER_PATH.
    spec = os.path.join(state_dir, "jupyter", "kernels", "evcxr-stock")
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w") as f:
        json.dump({"argv": [exe, "--control_file", "{connection_file}"], "display_name": "Rust (stock evcxr)",
                   "language": "rust", "env": {
                       "EVCXR_CONFIG_DIR": conf, "XDG_CACHE_HOME": os.path.join(state_dir, "cache"),
                       # what a user of the stock kernel sets up by hand for tch: where libtorch is
                       "LIBTORCH": libtorch, "LD_LIBRARY_PATH": os.path.join(libtorch, "lib")}}, f)
    os.environ["JUPYTER_PATH"] = os.path.join(state_dir, "jupyter") + os.pathsep + os.environ.get("JUPYTER_PATH", "")

    def factory():
        return KernelManager(kernel_name="evcxr-stock")

    lib_cell = lib_cell_stock()
    marker = os.path.join(state_dir, "cache-warm")
    res = {"kernel": "evcxr_jupyter 0.22.0 (stock)"}
    # The cold run first (once per machine): every later session finds the cache warm.
    if not os.path.exists(marker):
        try:
            c = session(factory, lib_cell, timeout=cold_timeout, trivial=False)
            res["lib_cell_cold_s"] = c["start_s"] + c["lib_cell_s"]
            open(marker, "w").close()
        except Exception as e:  # a timeout: report it as "more than"
            res["lib_cell_cold_s"] = None
            res["cold_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    a = session(factory, lib_cell, trivial=True)
    res.update(a)
    b = session(factory, lib_cell, trivial=False)
    res["lib_cell_s"] = b["lib_cell_s"]
    res["start_lib_s"] = b["start_s"]
    res["peak_rss_mb"] = max(a["peak_rss_mb"], b["peak_rss_mb"])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evcxr", default=os.path.join(ROOT, "target", "bench-peers", "evcxr", "bin", "evcxr_jupyter"))
    ap.add_argument("--state", default=os.path.join(ROOT, "target", "bench-peers", "evcxr-state"))
    ap.add_argument("--cold-timeout", type=int, default=1200)
    ap.add_argument("--only", choices=["ours", "stock"])
    a = ap.parse_args()
    if a.only != "stock":
        print(json.dumps(ours()), flush=True)
    if a.only != "ours":
        if not os.path.exists(a.evcxr):
            sys.exit(f"no stock kernel at {a.evcxr}: bench/run.sh installs it (cargo install evcxr_jupyter)")
        print(json.dumps(stock(a.evcxr, a.state, a.cold_timeout)), flush=True)


if __name__ == "__main__":
    main()
