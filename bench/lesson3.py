#!/usr/bin/env python3
"""The peer of `lib/examples/bench_lesson3.rs`: lesson 3's three tasks in Python fastai 2.x on the
offline lesson-3 data (~/.fastai/data/lesson3_offline, made by install.sh), same recipe:

- the same split: multilabel/ and points/ validate every fifth image (n % 5 == 0),
  segmentation/ the images of valid.txt;
- SIZE px, BS per batch, ImageNet normalization, THREADS torch threads and data workers;
- the same MobileNetV2 body with the same converted ImageNet weights
  (~/.fastai/models/mobilenet_v2-imagenet-features.safetensors), fastai's head (create_head) or
  DynamicUnet, the body frozen (BatchNorm still trained) for the first cycle;
- fastai v1's one-cycle (pct_start 0.3, final division 25e4, moms 0.95-0.85), AdamW wd 1e-2;
- multi-label: aug_transforms(flip_vert, max_lighting 0.1, max_zoom 1.05, max_warp 0), BCE,
  F-beta(2, thresh 0.2, samples) and accuracy_thresh(0.2);
- segmentation: aug_transforms(), per-pixel cross-entropy, pixel accuracy, foreground_acc(0);
- points: aug_transforms(), MSE on points in [-1, 1]; the error is the mean distance between
  predicted and true point in [-1, 1] units.

    .venv-bench/bin/python bench/lesson3.py [--size 96] [--bs 32] [--threads N] [--epochs 3]
        [--unfrozen 0] [--tasks multi,seg,points] [--limit N] [--seed 0] [--wd-bn-bias]

Prints one JSON line per task: seconds per epoch (training + validation), the metrics.
"""

import argparse
import csv
import json
import os
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--unfrozen", type=int, default=0)
    ap.add_argument("--tasks", default="multi,seg,points")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images of each task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wd-bn-bias", action="store_true",
                    help="weight decay on BatchNorm and bias parameters too (fastai v1's bn_wd=True, as ours)")
    ap.add_argument("--head-init", choices=["kaiming", "default"], default="kaiming",
                    help="the head's Linear layers: Kaiming-normal weights and zero biases, as fastai's "
                         "cnn_learner / vision_learner initialise them (and ours), or PyTorch's default init")
    ap.add_argument("--dihedral-p", type=float, default=1.0,
                    help="multi-label: probability of the random dihedral transform (flip_vert). fastai v1's "
                         "get_transforms(flip_vert=True) always draws one of the 8 (p=1, as ours); fastai 2's "
                         "aug_transforms uses p=0.5")
    args = ap.parse_args()

    import torch
    import torchvision
    import fastai
    from fastai.vision.all import (
        DataBlock, ImageBlock, MultiCategoryBlock, MaskBlock, PointBlock, Learner, Resize, Normalize,
        aug_transforms, create_head, imagenet_stats, params, FBetaMulti, accuracy_multi, accuracy,
        foreground_acc, BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat, FuncSplitter,
        TensorPoint, ColReader, apply_init, Dihedral,
    )
    from fastai.vision.models.unet import DynamicUnet
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    from fastai.torch_core import set_seed
    set_seed(args.seed)
    home = os.environ.get("FASTAI_HOME", os.path.expanduser("~/.fastai"))
    root = Path(home) / "data" / "lesson3_offline"
    weights = load_file(os.path.join(home, "models", "mobilenet_v2-imagenet-features.safetensors"))
    dev = torch.device("cpu")
    impl = f"fastai {fastai.__version__} (torch {torch.__version__})"

    def body():
        b = torchvision.models.mobilenet_v2(weights=None).features
        b.load_state_dict({k.removeprefix("features."): v for k, v in weights.items()})
        return b

    def number(p):
        return int(Path(p).stem.split("_")[1])

    def every_fifth(p):
        return number(p) % 5 == 0

    def limit(items):
        return items[: args.limit] if args.limit else items

    norm = Normalize.from_stats(*imagenet_stats)

    def dihedral_p(tfms):
        # (the probability lives in the transform's matrix function, not in its own `p`)
        return [Dihedral(p=args.dihedral_p, pad_mode="reflection", align_corners=True) if isinstance(t, Dihedral) else t
                for t in tfms]

    def run(task, dls, model, loss, metrics, splitter, score):
        if args.head_init == "kaiming" and task != "seg":
            apply_init(model[1], torch.nn.init.kaiming_normal_)
        learn = Learner(dls, model, loss_func=loss, metrics=metrics, splitter=splitter, wd=1e-2,
                        moms=(0.95, 0.85, 0.95), wd_bn_bias=args.wd_bn_bias)
        learn.freeze()
        with learn.no_bar(), learn.no_logging():
            t0 = time.perf_counter()
            learn.fit_one_cycle(args.epochs, 1e-2 if task != "seg" else 3e-3, pct_start=0.3, div_final=25e4)
            if args.unfrozen:
                learn.unfreeze()
                learn.fit_one_cycle(args.unfrozen, slice(1e-5, 1e-3), pct_start=0.3, div_final=25e4)
            secs = time.perf_counter() - t0
            res = score(learn)
        out = {"task": task, "impl": impl, "seconds_per_epoch": round(secs / (args.epochs + args.unfrozen), 2),
               "epochs": args.epochs + args.unfrozen, "train": len(dls.train_ds), "valid": len(dls.valid_ds),
               "seed": args.seed, "wd_bn_bias": args.wd_bn_bias, "head_init": args.head_init, "dihedral_p": args.dihedral_p if task == "multi" else None, "size": args.size, "bs": args.bs, "threads": args.threads, **res}
        print(json.dumps(out), flush=True)

    def values(learn):
        v = learn.validate()
        return [float(x) for x in v]

    tasks = args.tasks.split(",")
    if "multi" in tasks:
        d = root / "multilabel"
        rows = list(csv.DictReader(open(d / "labels.csv")))
        files = limit([d / "images" / f"{r['image_name']}.png" for r in rows])
        tags = {f"{r['image_name']}.png": r["tags"].split(" ") for r in rows}
        block = DataBlock(
            blocks=(ImageBlock, MultiCategoryBlock), get_items=lambda _: files,
            get_y=lambda p: tags[Path(p).name], splitter=FuncSplitter(every_fifth),
            item_tfms=Resize(args.size),
            batch_tfms=[*dihedral_p(aug_transforms(flip_vert=True, max_lighting=0.1, max_zoom=1.05, max_warp=0.0)), norm])
        dls = block.dataloaders(d, bs=args.bs, num_workers=args.threads, device=dev)
        model = torch.nn.Sequential(body(), create_head(1280, dls.c))
        fb = FBetaMulti(beta=2, average="samples", thresh=0.2)

        def score(learn):
            v = values(learn)
            return {"valid_loss": round(v[0], 4), "fbeta": round(v[1], 4), "accuracy_thresh": round(v[2], 4)}

        run("multi", dls, model, BCEWithLogitsLossFlat(), [fb, lambda i, t: accuracy_multi(i, t, thresh=0.2)],
            lambda m: [params(m[0]), params(m[1])], score)

    if "seg" in tasks:
        d = root / "segmentation"
        codes = (d / "codes.txt").read_text().split()
        valid = set((d / "valid.txt").read_text().split())
        files = limit(sorted((d / "images").glob("*.png")))
        block = DataBlock(
            blocks=(ImageBlock, MaskBlock(codes)), get_items=lambda _: files,
            get_y=lambda p: d / "labels" / f"{Path(p).stem}_P.png",
            splitter=FuncSplitter(lambda p: Path(p).name in valid),
            item_tfms=Resize(args.size), batch_tfms=[*aug_transforms(), norm])
        dls = block.dataloaders(d, bs=args.bs, num_workers=args.threads, device=dev)
        enc = body()
        model = DynamicUnet(enc, len(codes), (args.size, args.size))

        def score(learn):
            v = values(learn)
            return {"valid_loss": round(v[0], 4), "accuracy": round(v[1], 4), "foreground_acc": round(v[2], 4)}

        run("seg", dls, model, CrossEntropyLossFlat(axis=1),
            [lambda i, t: accuracy(i, t, axis=1), lambda i, t: foreground_acc(i, t, bkg_idx=0)],
            lambda m: [params(m[0]), params(m[1:])], score)

    if "points" in tasks:
        d = root / "points"
        ctr = {r["name"]: (float(r["x"]), float(r["y"])) for r in csv.DictReader(open(d / "centers.csv"))}
        files = limit(sorted((d / "images").glob("*.png")))
        block = DataBlock(
            blocks=(ImageBlock, PointBlock), get_items=lambda _: files,
            get_y=lambda p: TensorPoint([ctr[Path(p).name]]), splitter=FuncSplitter(every_fifth),
            item_tfms=Resize(args.size), batch_tfms=[*aug_transforms(), norm])
        dls = block.dataloaders(d, bs=args.bs, num_workers=args.threads, device=dev)
        model = torch.nn.Sequential(body(), create_head(1280, 2))

        def score(learn):
            preds, targs = learn.get_preds()
            dist = (preds.view(-1, 2) - targs.view(-1, 2)).pow(2).sum(1).sqrt().mean()
            return {"valid_loss": round(values(learn)[0], 5), "point_error": round(float(dist), 4)}

        run("points", dls, model, MSELossFlat(), [], lambda m: [params(m[0]), params(m[1])], score)


if __name__ == "__main__":
    main()
