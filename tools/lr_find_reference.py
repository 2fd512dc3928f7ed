"""Reference suggestions for lr_find from fastai 2.8's own functions.

Run with the benchmark venv (fastai 2.8 + torch):
    /work/main/.venv-bench/bin/python tools/lr_find_reference.py
Writes lib/tests/data/lr_find_reference.json: a few recorded lr_find curves (the whole record,
as `recorder.lrs`/`recorder.losses` hold it) and, for each, what fastai's `valley`, `slide`,
`minimum` and `steep` return when given the points `Learner.lr_find` hands them (the record less
its first num_it//10 and last 5 points, cut at the first NaN loss, as float32 tensors).
lib/tests/lr_find_reference.rs checks that the Rust suggestions match.
"""
import json
import math
from pathlib import Path

import numpy as np
import torch
from fastai.callback.schedule import minimum, slide, steep, valley

OUT = Path(__file__).resolve().parent.parent / "lib" / "tests" / "data" / "lr_find_reference.json"


def schedule(num_it, start=1e-7, end=10.0):
    # LRFinder: SchedExp(start, end) at pos = train_iter / num_it
    return [start * (end / start) ** (i / num_it) for i in range(num_it)]


def smooth(raw, beta=0.98):
    # fastai's AvgSmoothLoss: debiased exponential moving average
    out, val = [], 0.0
    for i, x in enumerate(raw):
        val = val * beta + x * (1 - beta)
        out.append(val / (1 - beta ** (i + 1)))
    return out


def stop_div(lrs, losses):
    # LRFinder.after_batch: the point above 4x the best is recorded, then the search stops
    best = math.inf
    for i, l in enumerate(losses):
        best = min(best, l)
        if l > 4 * best:
            return lrs[: i + 1], losses[: i + 1]
    return lrs, losses


def f32(xs):
    return [float(np.float32(x)) for x in xs]


def curves():
    rng = np.random.default_rng(0)
    out = []
    n = 100
    lrs = schedule(n)

    # flat (~0.2 with small noise) from 1e-7 to 1e-3, then rising to 4x: a trained stage
    raw = []
    for lr in lrs:
        x = math.log10(lr)
        base = 0.2 if x < -3 else 0.2 * (1 + 3 * ((x + 3) / 3.5) ** 2)
        raw.append(base + rng.normal(0, 0.004))
    out.append(("flat_then_rising", n, *stop_div(lrs, smooth(raw))))

    # classic U: flat at 2.3, falls from 1e-4 to a minimum near 3e-2, then explodes
    raw = []
    for lr in lrs:
        x = math.log10(lr)
        fall = 1.6 / (1 + math.exp(-2.5 * (x + 2.5)))
        rise = 0.0 if x < -1.5 else 3 * (x + 1.5) ** 2
        raw.append(2.3 - fall + rise + rng.normal(0, 0.01))
    out.append(("u_shape", n, *stop_div(lrs, smooth(raw))))

    # keeps falling until ~1e-1, then explodes (stop_div ends it early)
    raw = [1.5 * math.exp(-3 * lr ** 0.25) + (0 if lr < 0.1 else 40 * (lr - 0.1)) for lr in lrs]
    out.append(("decreasing_then_explode", n, *stop_div(lrs, smooth(raw))))

    # noisy: a U under heavy batch noise, smoothed as the recorder does
    raw = []
    for lr in lrs:
        x = math.log10(lr)
        raw.append(1.0 - 0.5 / (1 + math.exp(-2 * (x + 3))) + (0 if x < -1 else 2 * (x + 1) ** 2)
                   + rng.normal(0, 0.15))
    out.append(("noisy", n, *stop_div(lrs, smooth(raw))))

    # the raw (unsmoothed) noisy curve: ties and wiggles everywhere
    raw = [0.7 + 0.05 * math.sin(i) + rng.normal(0, 0.05) + (0 if i < 80 else 0.3 * (i - 80))
           for i in range(n)]
    out.append(("raw_noise", n, lrs, raw))

    # lr_find(num_it=200, end_lr=100): a longer record
    n2 = 200
    lrs2 = schedule(n2, 1e-7, 100.0)
    raw = [3.0 - 2.0 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + (0 if lr < 1 else 0.5 * lr)
           for lr in lrs2]
    out.append(("long_200", n2, *stop_div(lrs2, smooth(raw))))

    # a loss that turned NaN at iteration 70 (fastai goes on to num_it with NaN)
    raw = [2.0 - 0.01 * i for i in range(70)] + [math.nan] * 30
    out.append(("nan_at_70", n, lrs, smooth(raw)))
    return out


def suggestions(lrs_rec, losses_rec, num_it):
    # as Learner.lr_find
    lrs = torch.tensor(lrs_rec[num_it // 10:-5])
    losses = torch.tensor(losses_rec[num_it // 10:-5])
    nan_idxs = torch.nonzero(torch.isnan(losses.view(-1)))
    if len(nan_idxs) > 0:
        drop = min(nan_idxs)
        lrs, losses = lrs[:drop], losses[:drop]
    res = {}
    for f in (valley, slide, minimum, steep):
        try:
            lr, (x, y) = f(lrs, losses, num_it)
            res[f.__name__] = {"lr": float(lr), "mark": [float(x), float(y)]}
        except Exception as e:  # fastai fails on too short a curve
            res[f.__name__] = None
            print(f"  {f.__name__}: fastai raised {type(e).__name__}: {e}")
    return len(lrs), res


def main():
    cases = []
    for name, num_it, lrs, losses in curves():
        lrs, losses = f32(lrs), f32(losses)
        used, res = suggestions(lrs, losses, num_it)
        print(f"{name}: {len(lrs)} points recorded, {used} used; "
              + ", ".join(f"{k} {v['lr']:.3e}" if v else f"{k} -" for k, v in res.items()))
        cases.append({
            "name": name,
            "num_it": num_it,
            "lrs": lrs,
            "losses": [None if math.isnan(l) else l for l in losses],
            "fastai": res,
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": "fastai 2.8 fastai/callback/schedule.py", "cases": cases}))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
