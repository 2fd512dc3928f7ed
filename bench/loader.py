#!/usr/bin/env python3
"""Data loader throughput, ours vs torchvision + PIL, on the same JPEGs, in one run.

    .venv-bench/bin/python bench/loader.py [DIR] [--workers 2] [--bs 64]

Both sides do the same work per image: decode the JPEG, flip (p=0.5), rotate +-10 deg, zoom
1-1.1, perspective warp 0.2, brightness/contrast 0.2 (each p=0.75), resize the short side to 224
and crop 224x224, to a float tensor, normalize with ImageNet statistics, batch. Ours does all the
geometry in one resampling pass in Rust on a rayon pool; torchvision does one PIL pass per
transform in DataLoader worker processes. The numbers are the best epoch of 3 after a warm-up.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torchvision_rate(d, workers, bs, epochs=3):
    import torch
    import torchvision.transforms as T
    from PIL import Image

    torch.set_num_threads(1)
    tfm = T.Compose([
        T.RandomHorizontalFlip(),
        T.RandomApply([T.RandomAffine(degrees=10, scale=(1.0, 1.1))], p=0.75),
        T.RandomPerspective(distortion_scale=0.2, p=0.75),
        T.RandomApply([T.ColorJitter(brightness=0.2, contrast=0.2)], p=0.75),
        T.Resize(224),
        T.RandomCrop(224),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return tfm(Image.open(files[i]).convert("RGB")), 0

    dl = torch.utils.data.DataLoader(DS(), batch_size=bs, shuffle=True, num_workers=workers,
                                     drop_last=True, persistent_workers=workers > 0)
    best = 0.0
    for epoch in range(epochs + 1):
        t0 = time.time()
        n = 0
        for x, _ in dl:
            n += x.shape[0]
        rate = n / (time.time() - t0)
        if epoch > 0:
            best = max(best, rate)
        print(f"  torchvision epoch {epoch}: {rate:.0f} img/s", file=sys.stderr)
    return best, torch.__version__


def ours_rate(d, workers, bs):
    exe = os.path.join(ROOT, "target", "release", "examples", "bench_loader")
    if not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "fastai", "--example", "bench_loader"], cwd=ROOT, check=True)
    out = subprocess.run([exe, d, str(workers), str(bs)], capture_output=True, text=True, check=True)
    sys.stderr.write("".join("  " + l + "\n" for l in out.stderr.splitlines()))
    return float(out.stdout.split(":")[1].split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default="/tmp/bench/photos")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--side", choices=["ours", "torchvision"], help="run one side only and print a JSON line")
    a = ap.parse_args()
    if a.side:
        n = len([f for f in os.listdir(a.dir) if f.endswith(".jpg")])
        if a.side == "ours":
            rate, impl = ours_rate(a.dir, a.workers, a.bs), "fastai-rs"
        else:
            rate, tv = torchvision_rate(a.dir, a.workers, a.bs)
            impl = f"torchvision + PIL (torch {tv})"
        print(json.dumps({"impl": impl, "img_per_s": round(rate, 1), "images": n, "workers": a.workers, "bs": a.bs}))
        return
    if not os.path.isdir(a.dir):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_photos.py"), a.dir, "--n", "512"], check=True)
    ours = ours_rate(a.dir, a.workers, a.bs)
    theirs, tv = torchvision_rate(a.dir, a.workers, a.bs)
    n = len([f for f in os.listdir(a.dir) if f.endswith(".jpg")])
    print(f"\nloader throughput, {n} JPEGs of {a.dir}, 224 px, bs {a.bs}, {a.workers} workers, {os.cpu_count()} CPUs")
    print(f"{'':28}{'img/s':>10}")
    print(f"{'fastai-rs':28}{ours:10.1f}")
    print(f"{'torchvision ' + tv + ' + PIL':28}{theirs:10.1f}")
    print(f"{'ratio (ours / theirs)':28}{ours / theirs:10.2f}")


if __name__ == "__main__":
    main()
