#!/usr/bin/env python3
"""The peer of `examples/bench_train.rs`: the same classifier in plain PyTorch - torchvision's body
(resnet18/34/50 without avgpool+fc, mobilenet_v2's `features`) and fastai's head (concat pooling,
BatchNorm1d, Dropout 0.25, Linear(2nf, 512), ReLU, BatchNorm1d, Dropout 0.5, Linear(512, c)) - on
the same fixed random batch, with the same optimizer (AdamW, betas 0.9/0.99, eps 1e-5, weight
decay 1e-2, every parameter trainable), the same thread count and the same timing (3 warm-up
steps, then ITERS timed steps).

    .venv-bench/bin/python bench/torch_step.py ARCH SIZE BS train|eval [ITERS] [THREADS]
                                               [--device cpu|cuda] [--amp] [--channels-last]

Prints one JSON line like the Rust side. `--amp` trains under `torch.autocast` with a GradScaler
(what `to_fp16()` does), `--channels-last` puts model and input in `torch.channels_last`; the GPU
check (tests/gpu/run.sh) uses them. Without torchvision, the ResNets are built here (the same
layers as torchvision's).
"""

import json
import sys
import time

import torch
import torch.nn as nn

try:
    import torchvision
except ImportError:  # e.g. the project's own .venv on a GPU box: torch without torchvision
    torchvision = None


class Basic(nn.Module):
    """torchvision's BasicBlock (resnet18/34), for when torchvision is not installed."""

    def __init__(self, ni, nf, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(ni, nf, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(nf)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(nf)
        self.downsample = None
        if stride != 1 or ni != nf:
            self.downsample = nn.Sequential(nn.Conv2d(ni, nf, 1, stride, bias=False), nn.BatchNorm2d(nf))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + idt)


def basic_resnet_body(layers):
    mods = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    ni = 64
    for i, n in enumerate(layers):
        nf = 64 * 2 ** i
        mods.append(nn.Sequential(*[Basic(ni if j == 0 else nf, nf, 2 if (j == 0 and i > 0) else 1) for j in range(n)]))
        ni = nf
    return nn.Sequential(*mods), ni


class ConcatPool(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, 1), nn.functional.adaptive_avg_pool2d(x, 1)], 1).flatten(1)


def head(nf, c):
    return nn.Sequential(
        ConcatPool(), nn.BatchNorm1d(2 * nf), nn.Dropout(0.25), nn.Linear(2 * nf, 512), nn.ReLU(inplace=True),
        nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, c),
    )


def model(arch, c):
    if torchvision is None:
        layers = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}.get(arch)
        if layers is None:
            sys.exit(f"{arch} needs torchvision (only resnet18/34 are built in)")
        body, nf = basic_resnet_body(layers)
        return nn.Sequential(body, head(nf, c))
    if arch.startswith("resnet"):
        net = getattr(torchvision.models, arch)(weights=None)
        body = nn.Sequential(*list(net.children())[:-2])
        nf = net.fc.in_features
    elif arch == "mobilenet_v2":
        body = torchvision.models.mobilenet_v2(weights=None).features
        nf = 1280
    else:
        sys.exit(f"unknown architecture {arch}")
    return nn.Sequential(body, head(nf, c))


def main():
    argv = list(sys.argv[1:])
    amp, nhwc = "--amp" in argv, "--channels-last" in argv
    argv = [a for a in argv if a not in ("--amp", "--channels-last")]
    device = "cpu"
    if "--device" in argv:
        i = argv.index("--device")
        device = argv[i + 1] if i + 1 < len(argv) else ""
        del argv[i:i + 2]
        if device not in ("cpu", "cuda"):
            sys.exit(f"--device is cpu or cuda, not {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            sys.exit("--device cuda, but torch.cuda.is_available() is False")
    if len(argv) < 4 or any(a.startswith("--") for a in argv):
        sys.exit(__doc__)
    arch, size, bs, mode = argv[0], int(argv[1]), int(argv[2]), argv[3]
    iters = int(argv[4]) if len(argv) > 4 else 10
    threads = int(argv[5]) if len(argv) > 5 else torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = 10
    m = model(arch, c).to(device)
    x = torch.randn(bs, 3, size, size, device=device)
    y = torch.randint(c, (bs,), device=device)
    if nhwc:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=1e-2)
    # autocast runs on CUDA only, as in fastai-rs' to_fp16 (on the CPU only the scaling runs)
    use_autocast = amp and device == "cuda"
    scaler = torch.amp.GradScaler(device, enabled=amp)

    def step():
        if mode == "train":
            m.train()
            with torch.autocast(device, dtype=torch.float16, enabled=use_autocast):
                loss = nn.functional.cross_entropy(m(x).float(), y)
            value = loss.item()
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return value
        if mode == "eval":
            m.eval()
            with torch.no_grad():
                return m(x)[0, 0].item()
        sys.exit(f"MODE is train or eval, not {mode}")

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    loss = float("nan")
    for _ in range(iters):
        loss = step()
    sync()
    secs = time.perf_counter() - t0
    out = {"impl": f"pytorch {torch.__version__}", "arch": arch, "size": size, "bs": bs, "mode": mode,
           "threads": threads, "iters": iters, "img_per_s": round(iters * bs / secs, 2)}
    if sys.argv[5:] != argv[4:]:  # a flag was given: say what ran (the CPU benchmarks' line stays as it was)
        out.update(device=device, fp16=amp, channels_last=nhwc,
                   loss=round(loss, 4) if loss == loss and abs(loss) != float("inf") else None)
        if device == "cuda":
            out["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
