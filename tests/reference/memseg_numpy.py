"""A straightforward NumPy implementation of the MemSeg defect generator in src/core/synth/memseg.ts.

Same algorithm and defaults (Perlin mask with scale 2^k, k in [0, 5], rotated in [-90, 90] and thresholded at
0.5, retried until non-empty; texture source with p = 0.5 from the same five procedural textures, otherwise 3
random structure ops and an 8x8 tile shuffle; blend factor in [0.15, 1]), written the way the papers' code is:
whole-array NumPy operations, float64. Used only by bench/synth.ts to report the speed ratio; not a test oracle.

Usage: python3 memseg_numpy.py WIDTH HEIGHT [SECONDS]  -> prints one JSON line.
"""

import json
import math
import sys
import time

import numpy as np


def fade(t):
    # 6t^5 - 15t^4 + 10t^3 in Horner form (numpy's ** on arrays is a slow pow; this keeps the reference fair).
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_at(grad, sx, sy, u, v):
    """Noise at lattice coordinates u (x) and v (y); grad has shape (sy + 1, sx + 1, 2) holding (gx, gy)."""
    i = np.minimum(np.floor(u).astype(np.int64), sx - 1)
    j = np.minimum(np.floor(v).astype(np.int64), sy - 1)
    fx = u - i
    fy = v - j
    g00 = grad[j, i]
    g01 = grad[j, i + 1]
    g10 = grad[j + 1, i]
    g11 = grad[j + 1, i + 1]
    n00 = g00[..., 0] * fx + g00[..., 1] * fy
    n01 = g01[..., 0] * (fx - 1) + g01[..., 1] * fy
    n10 = g10[..., 0] * fx + g10[..., 1] * (fy - 1)
    n11 = g11[..., 0] * (fx - 1) + g11[..., 1] * (fy - 1)
    tx = fade(fx)
    ty = fade(fy)
    a = n00 + (n10 - n00) * ty
    b = n01 + (n11 - n01) * ty
    return math.sqrt(2) * (a + (b - a) * tx)


def gradients(sx, sy, rng):
    ang = 2 * np.pi * rng.random((sy + 1, sx + 1))
    return np.stack((np.sin(ang), np.cos(ang)), axis=-1)


def rotation_sources(w, h, angle):
    rad = np.deg2rad(angle)
    c, s = np.cos(rad), np.sin(rad)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xsrc = cx + c * (xs - cx) + s * (ys - cy)
    ysrc = cy - s * (xs - cx) + c * (ys - cy)
    return xsrc, ysrc


def perlin_mask(w, h, sx, sy, grad, angle, threshold):
    xsrc, ysrc = rotation_sources(w, h, angle)
    inside = (xsrc >= 0) & (ysrc >= 0) & (xsrc <= w - 1) & (ysrc <= h - 1)
    xc = np.clip(xsrc, 0, w - 1)
    yc = np.clip(ysrc, 0, h - 1)
    noise = perlin_at(grad, sx, sy, xc * sx / w, yc * sy / h)
    return inside & (noise > threshold)


def fbm(w, h, base, count, rng):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    acc = np.zeros((h, w))
    amp = 1.0
    for o in range(count):
        s = base << o
        acc += amp * perlin_at(gradients(s, s, rng), s, s, xs / w * s, ys / h * s)
        amp *= 0.5
    return acc


def texture(kind, w, h, cc, rng):
    col_a = rng.integers(0, 256, cc)
    col_b = rng.integers(0, 256, cc)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    inv = 1 / max(w, h)
    if kind == "fractal":
        f = 0.5 + 0.5 * fbm(w, h, int(rng.integers(2, 6)), 4, rng)
    elif kind == "marble":
        base = int(rng.integers(2, 5))
        freq = rng.uniform(4, 16) * np.pi
        a = rng.uniform(0, np.pi)
        turb = rng.uniform(2, 6)
        f = 0.5 + 0.5 * np.sin((xs * np.cos(a) + ys * np.sin(a)) * inv * freq + turb * fbm(w, h, base, 3, rng))
    elif kind == "stripes":
        period = rng.uniform(4, 24)
        a = rng.uniform(0, np.pi)
        duty = rng.uniform(-0.5, 0.5)
        f = (np.sin((xs * np.cos(a) + ys * np.sin(a)) * 2 * np.pi / period) > duty).astype(np.float64)
    elif kind == "cells":
        # Worley F1 over the 3x3 neighbouring grid cells, as the TypeScript version does.
        n = int(rng.integers(4, 16))
        jit = rng.random((n * n, 2))
        px = ((np.arange(n * n) % n) + jit[:, 0]) / n
        py = ((np.arange(n * n) // n) + jit[:, 1]) / n
        u = xs / w
        v = ys / h
        gx = np.minimum(n - 1, np.floor(u * n).astype(np.int64))
        gy = np.minimum(n - 1, np.floor(v * n).astype(np.int64))
        best = np.full((h, w), np.inf)
        for dj in (-1, 0, 1):
            for dl in (-1, 0, 1):
                jj = gy + dj
                ll = gx + dl
                ok = (jj >= 0) & (jj < n) & (ll >= 0) & (ll < n)
                k = np.clip(jj, 0, n - 1) * n + np.clip(ll, 0, n - 1)
                d = (px[k] - u) ** 2 + (py[k] - v) ** 2
                best = np.where(ok & (d < best), d, best)
        f = np.minimum(1, np.sqrt(best) * n)
    else:  # weave
        period = rng.uniform(6, 20)
        a = rng.uniform(0, np.pi / 2)
        k = 2 * np.pi / period
        s1 = np.sin((xs * np.cos(a) + ys * np.sin(a)) * k)
        s2 = np.sin((-xs * np.sin(a) + ys * np.cos(a)) * k)
        f = 0.5 + 0.25 * (s1 + s2) * np.where(s1 * s2 > 0, 1, 0.5)
    f = np.clip(f, 0, 1)[..., None]
    return np.clip(np.round(col_a + (col_b - col_a) * f), 0, 255)


def lut_apply(img, lut):
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        out[..., c] = lut[c][img[..., c].astype(np.int64)]
    return out


def equalize(img):
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        h = np.bincount(img[..., c].astype(np.int64).ravel(), minlength=256)
        nz = np.nonzero(h)[0]
        step = (h.sum() - h[nz[-1]]) // 255
        if step == 0:
            out[..., c] = img[..., c]
            continue
        lut = np.minimum(255, (np.concatenate(([0], np.cumsum(h)[:-1])) + step // 2) // step)
        out[..., c] = lut[img[..., c].astype(np.int64)]
    return out


def autocontrast(img, cutoff):
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        ch = img[..., c]
        lo, hi = np.percentile(ch, [cutoff, 100 - cutoff])
        if hi <= lo:
            out[..., c] = ch
            continue
        out[..., c] = np.clip(np.floor((ch - lo) * 255 / (hi - lo)), 0, 255)
    return out


def rotate(img, angle):
    h, w, cc = img.shape
    xsrc, ysrc = rotation_sources(w, h, angle)
    x0 = np.floor(xsrc).astype(np.int64)
    y0 = np.floor(ysrc).astype(np.int64)
    fx = (xsrc - x0)[..., None]
    fy = (ysrc - y0)[..., None]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)))

    def at(yy, xx):
        return pad[np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bot = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return np.round(top * (1 - fy) + bot * fy)


def sharpness(img, factor):
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    s = sum(p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    smooth = np.round((s + 4 * img) / 13)
    out = np.clip(np.round(smooth + factor * (img - smooth)), 0, 255)
    out[0], out[-1], out[:, 0], out[:, -1] = img[0], img[-1], img[:, 0], img[:, -1]
    return out


def hue_saturation(img, dh, ds):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    mx = img.max(-1)
    mn = img.min(-1)
    d = mx - mn
    safe = np.where(d == 0, 1, d)
    hh = np.where(mx == r, (g - b) / safe, np.where(mx == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hh = np.where(d == 0, 0, hh)
    hh = np.mod(hh + dh / 255 * 360 / 60, 6)
    s = np.clip(np.where(mx == 0, 0, d / np.where(mx == 0, 1, mx) * 255 + ds), 0, 255)
    chroma = mx * s / 255
    x = chroma * (1 - np.abs(np.mod(hh, 2) - 1))
    m = mx - chroma
    sext = hh.astype(np.int64)
    z = np.zeros_like(x)
    rr = np.choose(sext, [chroma, x, z, z, x, chroma])
    gg = np.choose(sext, [x, chroma, chroma, x, z, z])
    bb = np.choose(sext, [z, z, x, chroma, chroma, x])
    return np.clip(np.round(np.stack((rr + m, gg + m, bb + m), -1)), 0, 255)


OPS = ["gamma", "brightness", "sharpness", "hue_saturation", "solarize", "posterize", "invert", "autocontrast", "equalize", "rotate"]


def structure_op(op, img, rng):
    cc = img.shape[2]
    if op == "gamma":
        g = rng.uniform(0.5, 2, cc)
        return np.round(255 * (img / 255) ** g)
    if op == "brightness":
        mul, add = rng.uniform(0.8, 1.2), rng.uniform(-30, 30)
        y = img @ np.array([0.299, 0.587, 0.114]) if cc == 3 else img[..., 0]
        return np.clip(np.round(img + ((mul - 1) * y + add)[..., None]), 0, 255)
    if op == "sharpness":
        return sharpness(img, rng.uniform(0, 2))
    if op == "hue_saturation":
        return hue_saturation(img, rng.integers(-50, 51), rng.integers(-50, 51))
    if op == "solarize":
        applied, t = rng.random() < 0.5, rng.integers(32, 129)
        return np.where(img >= t, 255 - img, img) if applied else img
    if op == "posterize":
        bits = int(rng.integers(1, 9))
        return (img.astype(np.int64) & ((0xFF << (8 - bits)) & 0xFF)).astype(np.float64)
    if op == "invert":
        return 255 - img
    if op == "autocontrast":
        return autocontrast(img, rng.integers(0, 20))
    if op == "equalize":
        return equalize(img)
    return rotate(img, rng.uniform(-45, 45))


def grid_shuffle(img, grid, rng):
    h, w, _ = img.shape
    th, tw = h // grid, w // grid
    out = img.copy()
    perm = rng.permutation(grid * grid)
    tiles = img[: th * grid, : tw * grid].reshape(grid, th, grid, tw, -1).transpose(0, 2, 1, 3, 4).reshape(grid * grid, th, tw, -1)
    out[: th * grid, : tw * grid] = tiles[perm].reshape(grid, grid, th, tw, -1).transpose(0, 2, 1, 3, 4).reshape(grid * th, grid * tw, -1)
    return out


def memseg_defect(image, rng):
    h, w, cc = image.shape
    img = image.astype(np.float64)
    for _ in range(50):
        sx = min(w, 2 ** int(rng.integers(0, 6)))
        sy = min(h, 2 ** int(rng.integers(0, 6)))
        grad = gradients(sx, sy, rng)
        mask = perlin_mask(w, h, sx, sy, grad, rng.uniform(-90, 90), 0.5)
        if mask.any():
            break
    else:
        raise RuntimeError("no mask")
    use_texture = rng.random() < 0.5
    factor = rng.uniform(0.15, 1)
    if use_texture:
        source = texture(["fractal", "marble", "stripes", "cells", "weave"][rng.integers(0, 5)], w, h, cc, rng)
    else:
        source = img
        for k in rng.choice(len(OPS), 3, replace=False):
            source = structure_op(OPS[k], source, rng)
        source = grid_shuffle(source, 8, rng)
    m = mask[..., None].astype(np.float64)
    out = factor * (m * source) + (1 - factor) * (m * img) + (1 - m) * img
    return np.clip(np.round(out), 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


def surface(w, h):
    ys, xs = np.mgrid[0:h, 0:w]
    base = 60 + 120 * xs / w + 40 * ys / h + np.random.default_rng(0).integers(0, 16, (h, w))
    return np.clip(np.stack([base + 10 * c for c in range(3)], -1), 0, 255).astype(np.uint8)


def main():
    w, h = int(sys.argv[1]), int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    img = surface(w, h)
    rng = np.random.default_rng(1)
    for _ in range(5):
        memseg_defect(img, rng)
    n = 0
    t0 = time.perf_counter()
    while n < 10 or time.perf_counter() - t0 < seconds:
        memseg_defect(img, rng)
        n += 1
    dt = time.perf_counter() - t0
    print(json.dumps({"width": w, "height": h, "samples": n, "seconds": dt, "defectsPerSecond": n / dt, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
