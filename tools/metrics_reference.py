"""Reference values of the lesson-3 metrics from fastai 2.8's own metric code.

Run with the benchmark venv (fastai 2.8 + torch + sklearn):
    /work/main/.venv-bench/bin/python tools/metrics_reference.py
Writes lib/tests/data/metrics_reference.json: small fixed tensors (multi-label, segmentation,
points) split into batches, and what fastai's metric objects give after accumulating those
batches as a validation pass does (AvgMetric: per-batch values weighted by batch size;
AccumMetric: everything at once). lib/tests/metrics_lesson3.rs checks ours against them.

fastai v1 is not installed; its `fbeta` (per-item F-beta, averaged over items) is fastai 2.8's
`FBetaMulti(beta, thresh, average='samples')` (sklearn's samples-averaged F-beta) and its
`accuracy_thresh` is 2.8's `accuracy_multi`.
"""
import json
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch
from fastai.learner import AvgMetric
from fastai.metrics import Dice, FBetaMulti, accuracy, accuracy_multi, foreground_acc, mse, rmse

OUT = Path(__file__).resolve().parent.parent / "lib" / "tests" / "data" / "metrics_reference.json"


def run(metric, preds, targs, batches):
    """A validation pass: `metric` accumulated over `batches` (sizes) of preds/targs."""
    metric.reset()
    start = 0
    for bs in batches:
        learn = SimpleNamespace(pred=preds[start:start + bs], yb=(targs[start:start + bs],),
                                y=targs[start:start + bs], training=False,
                                to_detach=lambda t: t.detach())
        metric.accumulate(learn)
        start += bs
    v = metric.value
    return float(v)


def flat(t):
    return t.reshape(-1).tolist()


def main():
    g = torch.Generator().manual_seed(3)
    cases = {}

    # multi-label (planet): logits (N, C), multi-hot float targets; item 4 has no labels
    n, c = 10, 6
    logits = torch.randn(n, c, generator=g) * 2
    y = (torch.rand(n, c, generator=g) < 0.35).float()
    y[4] = 0
    logits[4] = -5  # ... and predicts none: fastai v1 counts it 0
    batches = [6, 4]
    cases["multi_label"] = {
        "pred_shape": [n, c], "pred": flat(logits),
        "targ_shape": [n, c], "targ": flat(y),
        "batches": batches,
        "fastai": {
            "accuracy_thresh_0.2": run(AvgMetric(partial(accuracy_multi, thresh=0.2)), logits, y, batches),
            "accuracy_thresh_0.5": run(AvgMetric(accuracy_multi), logits, y, batches),
            "fbeta_2_0.2": run(FBetaMulti(2, thresh=0.2, average="samples"), logits, y, batches),
            "fbeta_1_0.5": run(FBetaMulti(1, thresh=0.5, average="samples"), logits, y, batches),
        },
    }

    # segmentation (camvid-like): logits (N, C, H, W), int64 targets (N, H, W), void code 3
    n, c, h, w = 3, 4, 5, 6
    seg = torch.randn(n, c, h, w, generator=g)
    mask = seg.argmax(1)
    flip = torch.rand(n, h, w, generator=g) < 0.4
    mask = torch.where(flip, torch.randint(0, c, (n, h, w), generator=g), mask)
    batches = [2, 1]
    cases["segmentation"] = {
        "pred_shape": [n, c, h, w], "pred": flat(seg),
        "targ_shape": [n, h, w], "targ": flat(mask),
        "batches": batches,
        "fastai": {
            "accuracy_void_3": run(AvgMetric(partial(foreground_acc, bkg_idx=3)), seg, mask, batches),
            "foreground_acc_0": run(AvgMetric(partial(foreground_acc, bkg_idx=0)), seg, mask, batches),
            "accuracy": run(AvgMetric(partial(accuracy, axis=1)), seg, mask, batches),
        },
    }

    # two-class segmentation for dice
    seg2 = torch.randn(n, 2, h, w, generator=g)
    mask2 = torch.where(torch.rand(n, h, w, generator=g) < 0.3, 1 - seg2.argmax(1), seg2.argmax(1))
    cases["binary_segmentation"] = {
        "pred_shape": [n, 2, h, w], "pred": flat(seg2),
        "targ_shape": [n, h, w], "targ": flat(mask2),
        "batches": batches,
        "fastai": {"dice": run(Dice(), seg2, mask2, batches)},
    }

    # points (head pose / biwi): pred (N, P*2), targets (N, P, 2) in [-1, 1]
    n, p = 5, 3
    pts_pred = torch.rand(n, p * 2, generator=g) * 2 - 1
    pts = torch.rand(n, p, 2, generator=g) * 2 - 1
    batches = [3, 2]
    cases["points"] = {
        "pred_shape": [n, p * 2], "pred": flat(pts_pred),
        "targ_shape": [n, p, 2], "targ": flat(pts),
        "batches": batches,
        "fastai": {
            "mse": run(AvgMetric(mse), pts_pred, pts, batches),
            "rmse": run(rmse, pts_pred.reshape(n, p, 2), pts, batches),
        },
    }

    for name, case in cases.items():
        print(name, case["fastai"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": "fastai 2.8 fastai/metrics.py", "cases": cases}))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
