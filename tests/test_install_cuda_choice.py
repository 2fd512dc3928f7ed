"""install.sh picks the libtorch build the NVIDIA driver runs (tools/torch_variant.sh), tested
with a fake nvidia-smi on PATH through `./install.sh --print-torch-plan`, which prints the choice
and pip's arguments and exits before installing anything. Then pip, given those arguments, is
pointed at a local stand-in of PyTorch's package index serving a small fake wheel: nothing real is
downloaded and no real install runs."""

import http.server
import os
import shlex
import subprocess
import sys
import threading
import zipfile

import pytest

from helpers import ROOT

INSTALL = os.path.join(ROOT, "install.sh")
PYTORCH = "https://download.pytorch.org/whl"


def fake_smi(tmp_path, driver=None, cuda=None, fail=False, gpus=1):
    """An nvidia-smi that answers the driver query with `driver` (one line per GPU) and its
    header with "CUDA Version: `cuda`"; `driver=None` makes the query fail, as on old tools."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    if fail:
        body = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9\n'
    else:
        query = (f'printf "{driver}\\n%.0s" $(seq {gpus}); exit 0' if driver
                 else 'echo "Field \\"driver_version\\" is not a valid field to query."; exit 2')
        body = (f'case "$*" in *--query-gpu=driver_version*) {query} ;; esac\n'
                f'echo "| NVIDIA-SMI {driver or "450.00"}    Driver Version: {driver or "450.00"}    CUDA Version: {cuda or "12.0"}  |"\n')
    f = d / "nvidia-smi"
    f.write_text("#!/bin/sh\n" + body)
    f.chmod(0o755)
    return str(d)


def plan(tmp_path=None, args=(), env=None, smi_dir=None):
    path = os.environ["PATH"]
    # without a fake: a PATH where no nvidia-smi is found
    path = ":".join(p for p in path.split(":") if not os.path.exists(os.path.join(p, "nvidia-smi")))
    if smi_dir:
        path = smi_dir + ":" + path
    e = {k: v for k, v in os.environ.items() if not k.startswith("FASTAI_TORCH_")}
    e.update(env or {}, PATH=path)
    r = subprocess.run([INSTALL, "--print-torch-plan", *args], env=e, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("driver, variant, index", [
    ("580.65.06", "cu130", None),
    ("590.44.01", "cu130", None),
    ("575.57.08", "cu128", f"{PYTORCH}/cu128"),
    ("570.133.20", "cu128", f"{PYTORCH}/cu128"),
    ("560.35.05", "cu126", f"{PYTORCH}/cu126"),
    ("550.54.15", "cu126", f"{PYTORCH}/cu126"),
    ("535.230.02", "cu126", f"{PYTORCH}/cu126"),
    ("525.60.13", "cu126", f"{PYTORCH}/cu126"),
])
def test_the_driver_picks_the_build(tmp_path, driver, variant, index):
    rc, out, err = plan(smi_dir=fake_smi(tmp_path, driver=driver, gpus=2))
    assert rc == 0, err
    head, pip = out.strip().splitlines()
    assert head.startswith(f"libtorch 2.13.0: {variant} (NVIDIA driver {driver} ("), head
    if index:
        assert pip == f"pip install --force-reinstall --extra-index-url {index} torch==2.13.0+{variant}"
    else:
        assert pip == "pip install --force-reinstall torch==2.13.0"  # PyPI's own build (CUDA 13)


@pytest.mark.parametrize("driver", ["470.256.02", "520.61.05"])
def test_a_too_old_driver_is_named_with_what_to_do(tmp_path, driver):
    for args in ((), ("--cuda",)):
        rc, out, err = plan(args=args, smi_dir=fake_smi(tmp_path, driver=driver))
        assert rc == 1 and out == ""
        assert f"NVIDIA driver {driver} is too old" in err and ">= 525" in err and ">= 580" in err
        assert "./install.sh --cpu" in err
    # --cpu needs no driver at all
    rc, out, _ = plan(args=("--cpu",), smi_dir=fake_smi(tmp_path, driver=driver))
    assert rc == 0 and out.startswith("libtorch 2.13.0: cpu (asked for (--cpu))")


@pytest.mark.parametrize("cuda, variant", [("13.0", "cu130"), ("12.9", "cu128"), ("12.8", "cu128"),
                                           ("12.4", "cu126"), ("12.2", "cu126")])
def test_old_tools_without_the_driver_query_use_the_header(tmp_path, cuda, variant):
    rc, out, err = plan(smi_dir=fake_smi(tmp_path, driver=None, cuda=cuda))
    assert rc == 0, err
    assert out.startswith(f"libtorch 2.13.0: {variant} (the driver runs CUDA {cuda}")
    rc, _, err = plan(smi_dir=fake_smi(tmp_path, driver=None, cuda="11.4"))
    assert rc == 1 and "for CUDA 11.4 is too old" in err


def test_no_driver_means_the_cpu_build_as_before(tmp_path):
    rc, out, _ = plan()
    assert rc == 0
    assert out.splitlines() == [
        "libtorch 2.13.0: cpu (no NVIDIA driver (no nvidia-smi): the CPU build)",
        "pip install --force-reinstall --no-deps torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85"]
    rc, out, _ = plan(smi_dir=fake_smi(tmp_path, fail=True))
    assert rc == 0 and out.startswith("libtorch 2.13.0: cpu (nvidia-smi is there but did not answer")
    # --cuda on a machine without a driver: the newest build (the one-off check of the README)
    rc, out, _ = plan(args=("--cuda",))
    assert rc == 0 and out.splitlines()[-1] == "pip install --force-reinstall torch==2.13.0"
    assert out.startswith("libtorch 2.13.0: cu130 (asked for (--cuda)")


def test_the_build_and_the_index_can_be_forced(tmp_path):
    smi = fake_smi(tmp_path, driver="590.44.01")
    rc, out, _ = plan(smi_dir=smi, env={"FASTAI_TORCH_VARIANT": "cu126"})
    assert rc == 0 and out.splitlines() == [
        "libtorch 2.13.0: cu126 (FASTAI_TORCH_VARIANT=cu126)",
        f"pip install --force-reinstall --extra-index-url {PYTORCH}/cu126 torch==2.13.0+cu126"]
    rc, out, _ = plan(smi_dir=fake_smi(tmp_path, driver="550.54.15"), env={"FASTAI_TORCH_INDEX": "http://mirror.example/t/"})
    assert rc == 0 and "--extra-index-url http://mirror.example/t/ torch==2.13.0+cu126" in out
    rc, out, err = plan(env={"FASTAI_TORCH_VARIANT": "cu118"})
    assert rc == 1 and "FASTAI_TORCH_VARIANT must be cpu, cu126, cu128 or cu130 (not 'cu118')" in err


# ---------------------------------------------------------------- pip against an index stand-in

def fake_wheel(folder, variant):
    """A tiny wheel named like PyTorch's (torch-2.13.0+cu126-...), whose torch/__init__.py says
    which build it is."""
    version = f"2.13.0+{variant}"
    name = f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    files = {
        "torch/__init__.py": f'__version__ = "{version}"\nSTAND_IN = True\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / name, "w") as z:
        for p, text in files.items():
            z.writestr(p, text)
    return name


class Index:
    """A PEP 503 "simple" index on 127.0.0.1: /<variant>/torch/ lists the fake wheel; every path
    asked for is kept in `requests`."""

    def __init__(self, root):
        self.requests = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_pip_installs_from_the_index_the_plan_names(tmp_path):
    root = tmp_path / "index"
    (root / "cu126" / "torch").mkdir(parents=True)
    (root / "pypi").mkdir()  # the main index stand-in: empty, so nothing comes from the real PyPI
    wheel = fake_wheel(root / "cu126" / "torch", "cu126")
    (root / "cu126" / "torch" / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>\n')
    index = Index(root)
    try:
        rc, out, err = plan(smi_dir=fake_smi(tmp_path, driver="550.54.15"),
                            env={"FASTAI_TORCH_INDEX": f"{index.url}/cu126/"})
        assert rc == 0, err
        pip_args = shlex.split(out.strip().splitlines()[-1])[2:]
        assert pip_args == ["--force-reinstall", "--extra-index-url", f"{index.url}/cu126/", "torch==2.13.0+cu126"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"{index.url}/pypi/", PIP_DISABLE_PIP_VERSION_CHECK="1")
        target = tmp_path / "site"
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--target", str(target), *pip_args],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert 'STAND_IN = True' in (target / "torch" / "__init__.py").read_text()
        assert (target / "torch-2.13.0+cu126.dist-info").is_dir()
        assert "/cu126/torch/" in index.requests and f"/cu126/torch/{wheel}".replace("+", "%2B") in index.requests
        # a cu128 plan against this index (which has no cu128 wheel) fails, naming the version
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--target", str(tmp_path / "s2"),
                            "--extra-index-url", f"{index.url}/cu128/", "torch==2.13.0+cu128"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "torch==2.13.0+cu128" in r.stderr
    finally:
        index.close()
