#!/usr/bin/env python3
"""The peer of `examples/bench_train.rs`: the same classifier in plain PyTorch - torchvision's body
(resnet18/34/50 without avgpool+fc, mobilenet_v2's `features`) and fastai's head (concat pooling,
BatchNorm1d, Dropout 0.25, Linear(2nf, 512), ReLU, BatchNorm1d, Dropout 0.5, Linear(512, c)) - on
the same fixed random batch, with the same optimizer (AdamW, betas 0.9/0.99, eps 1e-5, weight
decay 1e-2, every parameter trainable), the same thread count and the same timing (3 warm-up
steps, then ITERS timed steps).

    .venv-bench/bin/python bench/torch_step.py ARCH SIZE BS train|eval [ITERS] [THREADS]

Prints one JSON line like the Rust side.
"""

import json
import sys
import time

import torch
import torch.nn as nn
import torchvision


class ConcatPool(nn.Module):
    def forward(self, x):
        return torch.cat([nn.functional.adaptive_max_pool2d(x, 1), nn.functional.adaptive_avg_pool2d(x, 1)], 1).flatten(1)


def head(nf, c):
    return nn.Sequential(
        ConcatPool(), nn.BatchNorm1d(2 * nf), nn.Dropout(0.25), nn.Linear(2 * nf, 512), nn.ReLU(inplace=True),
        nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, c),
    )


def model(arch, c):
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
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    arch, size, bs, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    iters = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = 10
    m = model(arch, c)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=1e-2)
    x = torch.randn(bs, 3, size, size)
    y = torch.randint(c, (bs,))

    def step():
        if mode == "train":
            m.train()
            loss = nn.functional.cross_entropy(m(x), y)
            value = loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return value
        if mode == "eval":
            m.eval()
            with torch.no_grad():
                return m(x)[0, 0].item()
        sys.exit(f"MODE is train or eval, not {mode}")

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": f"pytorch {torch.__version__}", "arch": arch, "size": size, "bs": bs, "mode": mode,
                      "threads": threads, "iters": iters, "img_per_s": round(iters * bs / secs, 2)}))


if __name__ == "__main__":
    main()
