#!/usr/bin/env python3
"""Runs a notebook headless with the fastai kernel, as "Run all" would, and saves it with outputs.

    .venv/bin/python tools/run_notebook.py notebooks/lesson1-offline.ipynb [-o OUT.ipynb] [--timeout S]
                                           [-p NAME=VALUE ...]

`-p NAME=VALUE` overrides a notebook parameter, papermill's way: the notebook's cell tagged
`parameters` holds the defaults (`let epochs = 12;`), and a cell `let NAME = VALUE;` (tagged
`injected-parameters`) is put right after it, shadowing them. The tests run the lessons small
this way; the notebook a student reads has only the lesson.

Stops at the first cell that fails (the kernel reports panics, compile errors and errors returned
with `?` as failures) and still saves what ran, so the failing cell can be read in JupyterLab.
Reports each cell on stderr as it finishes (its number, time and first line, and the training
table it showed), a failing cell's error at once, and the notebook's `result:` lines at the end
on stdout. Exit status 0 only if every cell ran.
"""

import argparse
import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

KERNEL = "fastai-rust"


def inject(nb, params):
    """Puts `let NAME = VALUE;` for each parameter after the cell tagged `parameters`."""
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if at is None:
        sys.exit(f"-p given, but no cell of the notebook is tagged `parameters`")
    source = nb.cells[at].source
    lines = []
    for p in params:
        name, sep, value = p.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            sys.exit(f"-p {p!r}: expected NAME=VALUE")
        # keep the parameter's declared type (`let epochs: usize = 4;`): a bare literal would be i32
        m = re.search(rf"let\s+(?:mut\s+)?{name}\s*:\s*([^=]+?)\s*=", source)
        if m is None:
            sys.exit(f"-p {name}: the parameters cell declares no `let {name}: <type> = ...`")
        lines.append(f"let {name}: {m.group(1)} = {value.strip()};")
    cell = nbformat.v4.new_code_cell("// injected by run_notebook.py -p\n" + "\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)


def first_line(source):
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("//"):
            return line.strip()[:90]
    return ""


def report_as_it_goes(client, nb):
    """Hooks that print each cell when it ends (stderr, so stdout keeps only the summary)."""
    total = sum(1 for c in nb.cells if c.cell_type == "code")
    started = {}

    def on_start(cell, cell_index, **_):
        started[cell_index] = time.time()

    def on_executed(cell, cell_index, **_):
        n = sum(1 for c in nb.cells[: cell_index + 1] if c.cell_type == "code")
        secs = time.time() - started.get(cell_index, time.time())
        print(f"[cell {n}/{total}] {secs:6.1f} s  {first_line(cell.source)}", file=sys.stderr, flush=True)
        for o in cell.get("outputs", []):
            text = o.get("data", {}).get("text/plain", "")
            if o.get("output_type") == "display_data" and "train_loss" in text:
                print("    " + text.replace("\n", "\n    "), file=sys.stderr, flush=True)

    def on_error(cell, cell_index, execute_reply, **_):
        c = execute_reply.get("content", {})
        print(f"cell failed: {c.get('ename', '')}: {c.get('evalue', '')[-2000:]}", file=sys.stderr, flush=True)

    client.on_cell_start = on_start
    client.on_cell_executed = on_executed
    client.on_cell_error = on_error


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook")
    ap.add_argument("-o", "--output", help="where to save the executed notebook (default: NAME.executed.ipynb)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a parameter of the cell tagged `parameters` (Rust expression)")
    a = ap.parse_args()
    out = a.output or os.path.splitext(a.notebook)[0] + ".executed.ipynb"
    nb = nbformat.read(a.notebook, as_version=4)
    if a.param:
        inject(nb, a.param)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=a.timeout, resources={"metadata": {"path": os.path.dirname(os.path.abspath(a.notebook))}})
    report_as_it_goes(client, nb)
    t0 = time.time()
    failed = None
    try:
        client.execute()
    except CellExecutionError as e:
        failed = e
    except Exception as e:  # kernel died, timeout, no such kernel
        failed = e
    nbformat.write(nb, out)
    ran = sum(1 for c in nb.cells if c.cell_type == "code" and c.get("execution_count"))
    total = sum(1 for c in nb.cells if c.cell_type == "code")
    print(f"ran {ran} of {total} code cells in {time.time() - t0:.0f} s; saved {out}")
    for c in nb.cells:
        for o in c.get("outputs", []):
            text = o.get("text") or ""
            for line in text.splitlines():
                if line.lower().startswith("result:"):
                    print(line)
    if failed is not None:
        print(f"\nstopped at a failing cell:\n{str(failed)[-3000:]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
