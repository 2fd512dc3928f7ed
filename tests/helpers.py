"""Helpers the integration tests share: where things are, a fastai kernel driven cell by cell
through jupyter_client (conftest.py's `kernel` fixture is one), running a notebook headless through
the real runner (tools/run_notebook.py: nbclient + the fastai kernel), and reading what its cells
show."""

import os
import subprocess
import sys
import time

import jupyter_client
import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tools", "run_notebook.py")
# Random-valued ResNet weights in the model hub's layout (lib/examples/stand_in_weights.rs).
WEIGHTS_TOOL = os.path.join(ROOT, "target", "release", "examples", "stand_in_weights")


KERNEL = "fastai-rust"


def user_fastai_home():
    """The fastai data folder of the *user* (where install.sh put the assets), not a test's."""
    return os.environ.get("FASTAI_HOME") or os.path.join(os.path.expanduser("~"), ".fastai")


# ---------------------------------------------------------------- a kernel, cell by cell

class Cell:
    """What one execute request produced: the reply and every iopub message, in order, with the
    seconds from the request to each message's arrival."""

    def __init__(self, reply, messages, times, seconds):
        self.reply = reply
        self.messages = messages
        self.times = times
        self.seconds = seconds  # until the reply
        self.status = reply["content"]["status"]

    def of_type(self, kind):
        return [m["content"] for m in self.messages if m["msg_type"] == kind]

    @property
    def arrivals(self):
        """(seconds, msg_type, content) of every iopub message, in order."""
        return [(t, m["msg_type"], m["content"]) for t, m in zip(self.times, self.messages)]

    @property
    def stdout(self):
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == "stdout")

    @property
    def stderr(self):
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == "stderr")

    def result(self):
        r = self.of_type("execute_result")
        return r[0]["data"]["text/plain"] if r else None


class Kernel:
    """A fastai kernel started through jupyter_client (`env`: its environment, if not ours)."""

    def __init__(self, env=None):
        extra = {"env": env} if env is not None else {}
        self.manager, self.client = jupyter_client.manager.start_new_kernel(
            kernel_name=KERNEL, startup_timeout=120, **extra
        )

    def run(self, code, timeout=600):
        messages, times = [], []
        t0 = time.time()

        def hook(msg):
            times.append(time.time() - t0)
            messages.append(msg)

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
        return Cell(reply, messages, times, time.time() - t0)

    def close(self):
        self.manager.shutdown_kernel(now=False)


# ---------------------------------------------------------------- running a notebook

def run_notebook(notebook, out, env=None, timeout=1800, params=None):
    """Runs `notebook` top to bottom, as "Run all" would, saving it with its outputs to `out`;
    `params` ({name: Rust expression}) override the notebook's `parameters` cell (`-p`).
    Fails the test with the runner's output unless every cell ran. Returns the runner's
    `CompletedProcess` (its stdout has the notebook's `result:` lines) and the executed notebook."""
    t0 = time.time()
    extra = [a for k, v in (params or {}).items() for a in ("-p", f"{k}={v}")]
    r = subprocess.run([sys.executable, RUNNER, str(notebook), "-o", str(out), *extra],
                       env=env, capture_output=True, text=True, timeout=timeout)
    print(f"{os.path.basename(notebook)} ran in {time.time() - t0:.0f} s: {r.stdout.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    return r, nbformat.read(str(out), as_version=4)


# ---------------------------------------------------------------- reading an executed notebook

def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def cell(nb, fragment, nth=None):
    """The code cell whose source contains `fragment` (there must be exactly one), or with `nth`,
    the nth of those."""
    found = [c for c in code_cells(nb) if fragment in c.source]
    if nth is None:
        assert len(found) == 1, (fragment, [c.source for c in found])
        return found[0]
    assert len(found) > nth, f"no cell #{nth} with {fragment!r}"
    return found[nth]


def outputs(c, kind):
    """A cell's outputs of one type (`stream`, `display_data`, `execute_result`, `error`)."""
    return [o for o in c.get("outputs", []) if o["output_type"] == kind]


def notebook_outputs(nb, kind):
    """(cell index, output) for every output of one type in the notebook."""
    return [(i, o) for i, c in enumerate(nb.cells) for o in outputs(c, kind)]


def result(c):
    """The text of a cell's execute_result (its last expression)."""
    r = outputs(c, "execute_result")
    assert r, f"no result in {c.source!r}: {c.outputs}"
    return r[-1]["data"]["text/plain"]


def stdout(c):
    return "".join(o["text"] for o in outputs(c, "stream") if o["name"] == "stdout")


def stream_text(c):
    """Everything a cell printed, stdout and stderr."""
    return "".join(o["text"] for o in outputs(c, "stream"))


def displays(c, mime):
    """A cell's display_data outputs that have `mime`."""
    return [o for o in outputs(c, "display_data") if mime in o.get("data", {})]


def assert_every_cell_ran(nb):
    assert all(c.get("execution_count") for c in code_cells(nb)), "every code cell ran"
    errors = notebook_outputs(nb, "error")
    assert not errors, errors
