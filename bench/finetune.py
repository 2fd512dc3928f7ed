#!/usr/bin/env python3
"""The peer of `examples/bench_finetune.rs`: the same one-epoch fine-tune in Python fastai 2.x.

Same images (`per_class` Fashion-MNIST training PNGs of each class from the offline assets), same
labels (the file-name pattern), 20% validation, fastai's augmentations at SIZE px (aug_transforms:
flip, rotate 10, zoom 1.1, warp 0.2, lighting 0.2), ImageNet normalization, the same MobileNetV2
body with the same converted ImageNet weights (~/.fastai/models/mobilenet_v2-imagenet-features
.safetensors, torchvision names), fastai's head (create_head), the body frozen (BatchNorm layers
still trained), `fit_one_cycle(1, 3e-3)`, batch size BS, THREADS torch threads and data workers.

    .venv-bench/bin/python bench/finetune.py [PER_CLASS] [SIZE] [BS] [THREADS]

Prints one JSON line: seconds for the epoch (training and validation), error rate, counts.
"""

import json
from pathlib import Path
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main():
    per_class = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    bs = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else os.cpu_count()

    import torch
    import torchvision
    from fastai.vision.all import (ImageDataLoaders, Learner, Normalize, Resize, aug_transforms, create_head,
                                   error_rate, imagenet_stats, params)
    import fastai
    from safetensors.torch import load_file

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    home = os.environ.get("FASTAI_HOME", os.path.expanduser("~/.fastai"))
    root = os.path.join(home, "data", "fashion_mnist")
    fnames = []
    for cls in open(os.path.join(root, "classes.txt")).read().split():
        d = os.path.join(root, "train", cls)
        names = sorted(n for n in os.listdir(d) if n.endswith(".png"))  # get_image_files' order
        fnames += [Path(d) / n for n in names[:per_class]]
    dls = ImageDataLoaders.from_name_re(
        root, fnames, r"^(.+)_\d+.png$", valid_pct=0.2, seed=42, item_tfms=Resize(size),
        batch_tfms=[*aug_transforms(size=size), Normalize.from_stats(*imagenet_stats)], bs=bs,
        num_workers=threads, device=torch.device("cpu"),
    )
    body = torchvision.models.mobilenet_v2(weights=None).features
    weights = load_file(os.path.join(home, "models", "mobilenet_v2-imagenet-features.safetensors"))
    body.load_state_dict({k.removeprefix("features."): v for k, v in weights.items()})
    model = torch.nn.Sequential(body, create_head(1280, dls.c))
    learn = Learner(dls, model, metrics=error_rate, splitter=lambda m: [params(m[0]), params(m[1])])
    learn.freeze()
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter()
        learn.fit_one_cycle(1, 3e-3)
        secs = time.perf_counter() - t0
        err = float(learn.validate()[1])
    print(json.dumps({"impl": f"fastai {fastai.__version__} (torch {torch.__version__})", "seconds": round(secs, 2),
                      "error_rate": round(err, 4), "train": len(dls.train_ds), "valid": len(dls.valid_ds),
                      "size": size, "bs": bs, "threads": threads}))


if __name__ == "__main__":
    main()
