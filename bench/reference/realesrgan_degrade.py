#!/usr/bin/env python3
"""The Real-ESRGAN second-order degradation on numpy + OpenCV: the baseline bench/degrade.ts times
the TypeScript pipeline against, in the same run.

Written from ../shared/docs/degradation-reference.md (the BasicSR / Real-ESRGAN training settings),
the way a numpy + OpenCV user would write it: cv2.filter2D for the blurs (reflect padding), cv2.resize
(area, bilinear, bicubic), numpy for the noise, libjpeg through cv2.imencode / cv2.imdecode for JPEG.
No unsharp masking (as the bench). OpenCV is held to one thread, as the TypeScript side is.

    python3 bench/reference/realesrgan_degrade.py IMAGE --size 512 --seeds 60 [--warmup 5]
        prints one JSON line: {"size", "seeds", "min_ms", "median_ms", "stages": {op: mean ms}, "versions"}
    python3 bench/reference/realesrgan_degrade.py IMAGE --psnr 150
        prints the PSNR statistic the reference document gives to check an implementation against
        (LQ of the 512x512 image against its area-downsampled original: mean 21.8 dB, median 22.0)

Needs numpy and cv2 (Debian: python3-numpy, python3-opencv); exits with code 3 when they are missing.
"""
import argparse
import json
import math
import statistics
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError as err:  # the bench reports "no baseline" on this exit code
    print(f"missing module: {err.name}", file=sys.stderr)
    sys.exit(3)

SCALE = 4
KERNEL_SIZES = list(range(7, 22, 2))
PADDED = 21
KINDS = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KIND_PROBS = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
MODES = [cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC]

STAGE1 = dict(sinc_prob=0.1, sigma=(0.2, 3.0), blur_prob=1.0, resize_probs=(0.2, 0.7, 0.1), up=(1.0, 1.5),
              down=(0.15, 1.0), gauss_sigma=(1.0, 30.0), poisson_scale=(0.05, 3.0))
STAGE2 = dict(sinc_prob=0.1, sigma=(0.2, 1.5), blur_prob=0.8, resize_probs=(0.3, 0.4, 0.3), up=(1.0, 1.2),
              down=(0.3, 1.0), gauss_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5))
GAUSS_PROB = 0.5
GRAY_PROB = 0.4
JPEG_RANGE = (30, 95)
FINAL_SINC_PROB = 0.8


def bessel_j1(x):
    """J1 by its integral (1/2pi) * integral over [0, 2pi] of cos(t - x sin t): the trapezoid rule on a
    periodic analytic integrand is exact to rounding once the point count exceeds |x| by a margin
    (|x| <= pi * 10 sqrt(2) ~ 45 here)."""
    n = 160
    t = np.arange(n) * (2 * math.pi / n)
    return np.cos(t[None, :] - np.asarray(x, dtype=np.float64).reshape(-1, 1) * np.sin(t)[None, :]).mean(axis=1).reshape(np.shape(x))


def pad_kernel(k):
    p = (PADDED - k.shape[0]) // 2
    return np.pad(k, ((p, p), (p, p))) if p > 0 else k


def sinc_kernel(size, cutoff):
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - c, y - c)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * bessel_j1(cutoff * r) / (2 * math.pi * r)
    k[r == 0] = cutoff ** 2 / (4 * math.pi)
    return pad_kernel(k / k.sum())


def shaped_kernel(rng, kind, size, sigma_range):
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    sx = rng.uniform(*sigma_range)
    if kind.endswith("aniso"):
        sy = rng.uniform(*sigma_range)
        theta = rng.uniform(-math.pi, math.pi)
    else:
        sy, theta = sx, 0.0
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    inv = np.linalg.inv(rot @ np.diag([sx * sx, sy * sy]) @ rot.T)
    q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
    if kind.startswith("generalized"):
        beta = rng.uniform(0.5, 1) if rng.random() < 0.5 else rng.uniform(1, 4)
        k = np.exp(-0.5 * q ** beta)
    elif kind.startswith("plateau"):
        beta = rng.uniform(1, 1) if rng.random() < 0.5 else rng.uniform(1, 2)
        k = 1 / (q ** beta + 1)
    else:
        k = np.exp(-0.5 * q)
    return pad_kernel(k / k.sum())


def stage_kernel(rng, stage):
    size = int(rng.choice(KERNEL_SIZES))
    if rng.random() < stage["sinc_prob"]:
        cutoff = rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi)
        return sinc_kernel(size, cutoff)
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_PROBS))]
    return shaped_kernel(rng, kind, size, stage["sigma"])


def final_sinc(rng):
    if rng.random() >= FINAL_SINC_PROB:
        return None
    return sinc_kernel(int(rng.choice(KERNEL_SIZES)), rng.uniform(math.pi / 3, math.pi))


def blur(img, k):
    return cv2.filter2D(img, -1, k.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


def resize(img, w, h, mode):
    return cv2.resize(img, (max(1, w), max(1, h)), interpolation=mode)


def draw_factor(rng, stage):
    kind = int(rng.choice(3, p=stage["resize_probs"]))
    return rng.uniform(*stage["up"]) if kind == 0 else rng.uniform(*stage["down"]) if kind == 1 else 1.0


def noise(img, rng, stage):
    gray = rng.random() < GRAY_PROB
    h, w, _ = img.shape
    if rng.random() < GAUSS_PROB:
        sigma = rng.uniform(*stage["gauss_sigma"]) / 255
        n = rng.standard_normal((h, w, 1 if gray else 3), dtype=np.float32) * np.float32(sigma)
    else:
        scale = rng.uniform(*stage["poisson_scale"])
        src = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None] if gray else img
        levels = np.clip(np.round(src * 255), 0, 255).astype(np.uint8)
        # The distinct 8-bit values, counted (np.unique would sort the whole image).
        vals = 2 ** math.ceil(math.log2(np.count_nonzero(np.bincount(levels.ravel(), minlength=256))))
        rounded = levels.astype(np.float32) / 255
        n = ((rng.poisson(rounded * vals) / vals - rounded) * scale).astype(np.float32)
    return img + n


def jpeg(img, quality):
    ok, buf = cv2.imencode(".jpg", np.clip(np.round(img * 255), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255


def degrade(src, rng, laps):
    """src: HxWx3 float32 in 0..1, BGR (OpenCV's order, which its JPEG codec expects). Returns the
    H/4 x W/4 LQ, uint8. `laps` gets the ms of each operation added."""
    t = [time.perf_counter()]

    def lap(label):
        now = time.perf_counter()
        laps[label] = laps.get(label, 0.0) + (now - t[0]) * 1000
        t[0] = now

    H, W, _ = src.shape
    out_w, out_h = W // SCALE, H // SCALE
    k1, k2, sinc = stage_kernel(rng, STAGE1), stage_kernel(rng, STAGE2), final_sinc(rng)
    lap("kernels")

    img = blur(src, k1)
    lap("blur 1")
    f = draw_factor(rng, STAGE1)
    img = resize(img, int(img.shape[1] * f), int(img.shape[0] * f), MODES[int(rng.integers(3))])
    lap("resize 1")
    img = np.clip(noise(img, rng, STAGE1), 0, 1)
    lap("noise 1")
    img = jpeg(img, rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1))
    lap("jpeg 1")

    if rng.random() < STAGE2["blur_prob"]:
        img = blur(img, k2)
    lap("blur 2")
    f = draw_factor(rng, STAGE2)
    img = resize(img, int(out_w * f), int(out_h * f), MODES[int(rng.integers(3))])
    lap("resize 2")
    img = np.clip(noise(img, rng, STAGE2), 0, 1)
    lap("noise 2")

    if rng.random() < 0.5:
        img = resize(img, out_w, out_h, MODES[int(rng.integers(3))])
        lap("final resize")
        if sinc is not None:
            img = blur(img, sinc)
        lap("final sinc")
        img = jpeg(np.clip(img, 0, 1), rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1))
        lap("jpeg 2")
    else:
        img = jpeg(img, rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1))
        lap("jpeg 2")
        img = resize(img, out_w, out_h, MODES[int(rng.integers(3))])
        lap("final resize")
        if sinc is not None:
            img = blur(img, sinc)
        lap("final sinc")
    lq = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    lap("round")
    return lq


def load(path, size):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    img = bgr.astype(np.float32) / 255
    if img.shape[0] != size or img.shape[1] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--psnr", type=int, default=0, help="print the PSNR statistic over this many draws instead")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    src = load(args.image, args.size)

    if args.psnr:
        clean = cv2.resize(src, (args.size // SCALE, args.size // SCALE), interpolation=cv2.INTER_AREA)
        clean8 = np.clip(np.round(clean * 255), 0, 255).astype(np.float64)
        vals = []
        for s in range(args.psnr):
            lq = degrade(src, np.random.default_rng(s), {}).astype(np.float64)
            mse = np.mean((lq - clean8) ** 2)
            vals.append(10 * math.log10(255 ** 2 / mse))
        q = np.percentile(vals, [5, 50, 95])
        print(json.dumps({"draws": args.psnr, "mean": statistics.fmean(vals), "std": statistics.pstdev(vals),
                          "p5": q[0], "median": q[1], "p95": q[2]}))
        return

    for s in range(args.warmup):
        degrade(src, np.random.default_rng(1000 + s), {})
    laps = {}
    ms = []
    for s in range(args.seeds):
        t0 = time.perf_counter()
        degrade(src, np.random.default_rng(s), laps)
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "size": args.size,
        "seeds": args.seeds,
        "min_ms": min(ms),
        "median_ms": statistics.median(ms),
        "stages": {k: v / args.seeds for k, v in laps.items()},
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "cv2": cv2.__version__},
    }))


if __name__ == "__main__":
    main()
