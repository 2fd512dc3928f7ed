"""JupyterLab, in a real browser: a cell on the "Rust (fastai)" kernel draws the library's progress
bar and a results table, and both update in place while the cell runs.

Starts `.venv/bin/jupyter lab` on a temporary folder, drives the system's headless Chromium with
playwright-core (tools/lab/run_cell.js), and checks the page's DOM; screenshots are saved in
target/ui/. Needs `./install.sh --browser-tests` (Chromium and playwright-core); skipped, saying
so, when they are missing.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import nbformat
import pytest

from helpers import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAB_TOOLS = os.path.join(ROOT, "tools", "lab")
SCREENSHOTS = os.path.join(ROOT, "target", "ui")
# A first cell may wait for the library to be compiled into a fresh kernel build folder.
CELL_TIMEOUT = 900


def _missing():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium ({CHROMIUM})")
    if shutil.which("node") is None:
        missing.append("Node.js (node)")
    if not os.path.isfile(os.path.join(LAB_TOOLS, "node_modules", "playwright-core", "package.json")):
        missing.append("playwright-core (tools/lab/node_modules)")
    if not os.access(os.path.join(ROOT, ".venv", "bin", "jupyter"), os.X_OK):
        missing.append("JupyterLab (.venv/bin/jupyter)")
    return missing


pytestmark = pytest.mark.skipif(
    bool(_missing()),
    reason="browser test needs " + ", ".join(_missing()) + ": run ./install.sh --browser-tests",
)

STEPS = 6
CELL = r"""use fastai::display::progress::{BarState, ProgressBar};
// A bar and a table, both redrawn in place while the loop runs (as fit_one_cycle's are).
let steps = 6u64;
let mut bar = ProgressBar::live("step", Some(steps)).expect("live displays need the fastai kernel");
bar.min_interval = std::time::Duration::ZERO;
let head = "<table class='dataframe'><thead><tr><th>step</th><th>loss</th></tr></thead><tbody>";
let table = DisplayHandle::new(&Rich::html(format!("{head}</tbody></table>"), "step loss"));
let mut rows = String::new();
for step in 1..=steps {
    std::thread::sleep(std::time::Duration::from_millis(800));
    let loss = 2.0 / step as f64;
    rows += &format!("<tr><td>{step}</td><td>{loss:.4}</td></tr>");
    table.update(&Rich::html(format!("{head}{rows}</tbody></table>"), format!("step {step}: {loss:.4}")));
    bar.update(step, &format!("loss {loss:.4}"));
}
bar.finish(steps, "done", BarState::Done);
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a temporary root holding progress.ipynb; yields (url, token)."""
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "fastai-rust", "display_name": "Rust (fastai)", "language": "rust"}
    nb.metadata["language_info"] = {"name": "rust"}
    nb.cells.append(nbformat.v4.new_code_cell(CELL))
    nbformat.write(nb, str(root / "progress.ipynb"))
    token = secrets.token_hex(16)
    port = _free_port()
    # Jupyter's per-user folders go to the temporary folder: the kernelspec comes from the venv only,
    # and no workspace or setting of the user's is read or written.
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(tmp_path / var.lower())
    # No "get Jupyter news?" toast over the outputs (and no request for the feed).
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}\n')
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [
            os.path.join(ROOT, ".venv", "bin", "jupyter"), "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            # No network: no news feed, no update check.
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.3)
        yield url, token
    finally:
        server.send_signal(signal.SIGTERM)  # shuts its kernels down too
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_progress_bar_and_table_update_in_place_in_jupyterlab(lab, tmp_path):
    url, token = lab
    t0 = time.time()
    r = subprocess.run(
        ["node", os.path.join(LAB_TOOLS, "run_cell.js"), "--url", url, "--token", token,
         "--notebook", "progress.ipynb", "--out", SCREENSHOTS, "--timeout", str(CELL_TIMEOUT)],
        capture_output=True, text=True, timeout=CELL_TIMEOUT + 120,
    )
    assert r.returncode == 0, r.stderr[-6000:] + "\n--- lab log ---\n" + (tmp_path / "lab.log").read_text()[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"browser run {time.time() - t0:.1f} s, cell {summary['seconds']:.1f} s in the page")
    final = summary["final"]
    assert "Rust (fastai)" in summary["kernelName"]
    # Two displays, redrawn in place: one bar and one table (not one output per update).
    assert final["displays"] == 2, final
    assert final["bars"] == [{"value": STEPS, "max": STEPS}], final
    assert "100.00%" in final["barText"][0] and "done" in final["barText"][0], final["barText"]
    (table,) = final["tables"]
    assert table["header"] == ["step", "loss"]
    assert [row[0] for row in table["rows"]] == [str(i) for i in range(1, STEPS + 1)], table
    assert table["rows"][-1] == [str(STEPS), f"{2.0 / STEPS:.4f}"]
    # Live: while the cell ran ([*]), the page showed the bar part-way and the table part-filled.
    running = [s for s in summary["samples"] if "*" in s["prompt"] and s["bars"]]
    values = sorted({s["bars"][0]["value"] for s in running})
    assert len([v for v in values if 0 < v < STEPS]) >= 3, values
    partial = {len(s["tables"][0]["rows"]) for s in running if s["tables"]}
    assert any(0 < n < STEPS for n in partial), partial
    assert all(s["displays"] <= 2 for s in summary["samples"]), "an update appended an output"
    assert not final["errors"], final["errors"]
    # stderr may only hold the note about the library being recompiled (after its sources changed).
    assert all("compiling the fastai library" in t for t in final["stderr"]), final["stderr"]
    for shot in summary["screenshots"]:
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", shot
    assert os.path.basename(summary["screenshots"][-1]) == "jupyterlab-progress.png"
