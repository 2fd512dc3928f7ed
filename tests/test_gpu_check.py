"""tests/gpu/run.sh, the prepared GPU check, on this GPU-less machine: without a working
nvidia-smi it says in one line that it needs a GPU and exits 0; `--cpu-dry-run` runs every step on
the CPU at tiny sizes (with this checkout's own kernel build) and writes the JSON and the table."""

import json
import os
import shutil
import subprocess

import pytest

from helpers import KERNEL, ROOT

RUN = os.path.join(ROOT, "tests", "gpu", "run.sh")


def fake_bin(tmp_path, script):
    d = tmp_path / "bin"
    d.mkdir()
    f = d / "nvidia-smi"
    f.write_text("#!/bin/sh\n" + script)
    f.chmod(0o755)
    return str(d)


def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    # no nvidia-smi at all (this machine), then one that exists but fails (driver not loaded)
    no_smi = ":".join(p for p in os.environ["PATH"].split(":") if not os.path.exists(os.path.join(p, "nvidia-smi")))
    failing = fake_bin(tmp_path, 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver" >&2; exit 9\n')
    for path in (no_smi, failing + ":" + no_smi):
        env = dict(os.environ, PATH=path, OUT=str(tmp_path / "out"))
        r = subprocess.run([RUN], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = (r.stdout + r.stderr).strip().splitlines()
        assert len(lines) == 1 and "needs an NVIDIA GPU" in lines[0], lines
        assert not (tmp_path / "out").exists()  # nothing built, nothing written


def own_kernelspec(tmp_path):
    """A kernelspec named like the installed one, but running this checkout's kernel build, with
    its own build folders (JUPYTER_PATH comes first in Jupyter's search)."""
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    d = tmp_path / "jupyter" / "kernels" / KERNEL
    d.mkdir(parents=True)
    argv = [os.path.join(target, "release", "fastai-kernel"), *spec.argv[1:]]
    env = dict(spec.env, FASTAI_KERNEL_CACHE=os.path.join(target, "evcxr"))
    (d / "kernel.json").write_text(json.dumps(dict(spec.to_dict(), argv=argv, env=env)))
    return str(tmp_path / "jupyter")


@pytest.mark.skipif(os.environ.get("FASTAI_GPU_DRY_RUN") != "1",
                    reason="5-9 minutes: run with FASTAI_GPU_DRY_RUN=1 after changing tests/gpu/")
def test_cpu_dry_run_runs_every_step_and_writes_the_results(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), JUPYTER_PATH=own_kernelspec(tmp_path))
    r = subprocess.run([RUN, "--cpu-dry-run"], env=env, capture_output=True, text=True, timeout=1500)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((out / "gpu-check.json").read_text())
    assert report["info"]["mode"] == "cpu-dry-run"
    assert report["info"]["kernel"].startswith(os.environ.get("CARGO_TARGET_DIR") or ROOT)
    checks = {c["name"]: c for c in report["checks"]}
    names = " / ".join(checks)
    for part in ("device_info() (dry run", "fp32", "to_fp16", "channels-last", "whole pipeline", "render_batch", "loader to the device", "first fit", "interrupt",
                 "drop(learn)", "two kernels"):
        assert part in names, (part, names)
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    steps = [c for n, c in checks.items() if n.startswith("train step")]
    assert len(steps) == 3 and all(c["numbers"]["img/s"] > 0 and c["numbers"]["peak MB"] > 0 for c in steps)
    # autocast is CUDA-only: on the CPU the forward pass stays float32
    assert [c["numbers"].get("autocast dtype") for c in steps] == [None, "Float", "Float"]
    if shutil.which(os.path.join(ROOT, ".venv-bench", "bin", "python")):
        assert all("PyTorch img/s" in c["numbers"] for c in steps), steps
    lesson = next(c for n, c in checks.items() if "first fit" in n)
    assert lesson["numbers"]["device"] == "Cpu" and 0 <= lesson["numbers"]["error_rate"] <= 1
    assert "kept" in next(c for n, c in checks.items() if "interrupt" in n)["numbers"]["reply"]
    table = (out / "gpu-check.md").read_text().splitlines()
    assert table[2] == "| check | result | numbers |" and len(table) == 4 + len(checks), table
    assert "10/10 checks passed" in r.stdout
