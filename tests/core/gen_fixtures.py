#!/usr/bin/python3
"""Reference vectors for tests/core, made with PyTorch and NumPy (Debian's python3-torch,
python3-numpy). Run with /usr/bin/python3 from this folder: ./gen_fixtures.py

torch_fq.bin  -- torch.fake_quantize_per_{tensor,channel}_affine for every bit-width
                 (2..8, 16) x scheme x granularity (tensor, channel, group; group = per-channel
                 on the [rows * groups, G] reshape, the last partial group zero-padded, which
                 changes neither max|x| nor a range that is widened to contain 0), min/max
                 calibration with the PRODUCT.md section 3 formulas computed here in float32.
                 Record: i32 bits, scheme (0 sym, 1 asym), gran (0 tensor, 1 channel,
                 2 group), G, rows, cols, nblocks; f32 x[rows*cols]; f32 scale[nblocks];
                 i32 zp[nblocks]; f32 y[rows*cols].  File: u32 magic 'QLFQ', u32 count.
percentile.bin -- np.percentile (default linear method), of |x| and of x.
                 Record: u32 n, u32 np; f32 x[n]; np x (f64 p, f64 abs_result, f64 result).
demo.npy       -- the demo tensor (a 64x128 'weight matrix', float32).
demo-q4-asym-channel.npy -- torch's fake-quant of demo.npy, 4 bits, asymmetric, per channel.
bad-*.npy      -- invalid inputs for the CLI test.
"""
import struct

import numpy as np
import torch

rng = np.random.default_rng(20261204)


def qrange(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def params(lo, hi, bits, asym):
    """PRODUCT.md section 3, in float32 like torch's observers."""
    qmin, qmax = qrange(bits)
    eps = np.float32(np.finfo(np.float32).eps)
    lo = np.float32(lo)
    hi = np.float32(hi)
    if not asym:
        t = np.maximum(np.abs(lo), np.abs(hi))
        s = np.float32(t / np.float32(qmax))
        return np.float32(max(s, eps)), 0
    lo = min(lo, np.float32(0))
    hi = max(hi, np.float32(0))
    s = np.float32((hi - lo) / np.float32(qmax - qmin))
    s = np.float32(max(s, eps))
    z = np.float32(qmin) - np.rint(np.float32(lo / s))
    z = int(min(max(z, qmin), qmax))
    return s, z


def fq_rows(x2d, bits, asym):
    """Per-row min/max params, then torch per-channel fake quant along axis 0."""
    qmin, qmax = qrange(bits)
    sc, zp = [], []
    for r in x2d:
        s, z = params(r.min(), r.max(), bits, asym)
        sc.append(s)
        zp.append(z)
    sc = np.array(sc, dtype=np.float32)
    zp = np.array(zp, dtype=np.int32)
    y = torch.fake_quantize_per_channel_affine(
        torch.from_numpy(x2d.copy()), torch.from_numpy(sc), torch.from_numpy(zp), 0, qmin, qmax)
    return sc, zp, y.numpy()


def case(x, bits, asym, gran, G):
    rows, cols = x.shape
    qmin, qmax = qrange(bits)
    if gran == 0:
        s, z = params(x.min(), x.max(), bits, asym)
        y = torch.fake_quantize_per_tensor_affine(torch.from_numpy(x.copy()), float(s), z,
                                                  qmin, qmax).numpy()
        sc = np.array([s], dtype=np.float32)
        zp = np.array([z], dtype=np.int32)
    elif gran == 1:
        sc, zp, y = fq_rows(x, bits, asym)
    else:
        ngr = (cols + G - 1) // G
        pad = np.zeros((rows, ngr * G), dtype=np.float32)
        pad[:, :cols] = x
        sc, zp, yp = fq_rows(pad.reshape(rows * ngr, G), bits, asym)
        y = yp.reshape(rows, ngr * G)[:, :cols]
    assert y.dtype == np.float32
    head = struct.pack('<7i', bits, int(asym), gran, G, rows, cols, len(sc))
    return head + x.astype('<f4').tobytes() + sc.astype('<f4').tobytes() + \
        zp.astype('<i4').tobytes() + np.ascontiguousarray(y).astype('<f4').tobytes()


def tensor(rows, cols):
    # Rows with different spreads and offsets (per-channel matters), a few outliers.
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x *= rng.uniform(0.01, 2.0, size=(rows, 1)).astype(np.float32)
    x += rng.uniform(-0.5, 0.5, size=(rows, 1)).astype(np.float32)
    x[rng.integers(0, rows), rng.integers(0, cols)] *= 8
    return x


def ties(asym):
    # 8 bits with scale exactly 1: x = k + 0.5 are exact ties (round half to even).
    x = (np.arange(-40, 40, dtype=np.float32) * 0.5).reshape(4, 20)
    x[0, 0] = -128.0 if asym else -127.0
    x[0, 1] = 127.0
    return x


recs = []
for bits in [2, 3, 4, 5, 6, 7, 8, 16]:
    for asym in [False, True]:
        for gran in [0, 1, 2]:
            x = tensor(16, 67)
            recs.append(case(x, bits, asym, gran, 16))
for asym in [False, True]:
    recs.append(case(ties(asym), 8, asym, 0, 16))
    # All-positive data (the seed's zero-point pitfall) and a constant (zero-range) tensor.
    recs.append(case(rng.uniform(0, 5, size=(8, 33)).astype(np.float32), 8, asym, 1, 16))
    recs.append(case(np.zeros((3, 10), dtype=np.float32), 4, asym, 0, 16))
with open('fixtures/torch_fq.bin', 'wb') as f:
    f.write(struct.pack('<4sI', b'QLFQ', len(recs)))
    for r in recs:
        f.write(r)

ps = [99.9, 99.0, 50.0, 0.1, 100.0, 37.5, 99.99, 1e-3]
prec = []
for n in [1, 2, 7, 1000, 100003]:
    x = rng.standard_normal(n).astype(np.float32)
    if n > 10:
        x[rng.integers(0, n, size=5)] = np.float32(40.0)
    rec = struct.pack('<II', n, len(ps)) + x.astype('<f4').tobytes()
    for p in ps:
        rec += struct.pack('<3d', p, float(np.percentile(np.abs(x), p)),
                           float(np.percentile(x, p)))
    prec.append(rec)
with open('fixtures/percentile.bin', 'wb') as f:
    f.write(struct.pack('<4sI', b'QLPC', len(prec)))
    for r in prec:
        f.write(r)

demo = (rng.standard_normal((64, 128)) * 0.05).astype(np.float32)
demo[3, 7] = 0.9
np.save('fixtures/demo.npy', demo)
sc, zp, y = fq_rows(demo, 4, True)
np.save('fixtures/demo-q4-asym-channel.npy', y.astype(np.float32))

bad = np.ones((4, 4), dtype=np.float32)
bad[1, 2] = np.nan
np.save('fixtures/bad-nan.npy', bad)
np.save('fixtures/bad-f16.npy', np.ones((4, 4), dtype=np.float16))
np.save('fixtures/bad-fortran.npy', np.asfortranarray(np.ones((4, 3), dtype=np.float32)))
with open('fixtures/bad-truncated.npy', 'wb') as f:
    import io
    b = io.BytesIO()
    np.save(b, np.ones((16, 16), dtype=np.float32))
    f.write(b.getvalue()[:-100])
np.save('fixtures/demo-f64.npy', demo.astype(np.float64))
print('wrote', len(recs), 'fake-quant cases,', len(prec), 'percentile sets')
