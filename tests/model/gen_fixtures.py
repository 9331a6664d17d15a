#!/usr/bin/python3
"""PyTorch reference fixtures for tests/model (run with Debian's python, which has torch):

    /usr/bin/python3 tests/model/gen_fixtures.py

Writes into tests/model/fixtures/:
  reference.txt          "key value" lines: PyTorch's FP32 and weight-only fake-quant
                         accuracies (percent, 10,000 test images) and per-layer weight MSE
  <model>.pred.u8        PyTorch's FP32 top-1 predictions, one byte per test image
  kernels.safetensors    small random conv2d / maxpool inputs, weights and PyTorch outputs
  tiny-cnn.safetensors   a 3-channel CNN (stride 2, rectangular kernel, pool 3/2) with its
                         layer list in __metadata__; kernels.safetensors has an input batch
                         and PyTorch's per-layer outputs for it
  unseen-mlp.safetensors a 784-64-10 nn.Sequential trained here for one epoch, saved the way
                         a user would (tensor names "1.weight", "3.weight", NO layer list)

Fake quantization follows PRODUCT.md section 3 with the scales computed in float32 exactly
as the core does (qlab_params_from_range), then torch.fake_quantize_per_*_affine.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "data"))
import train  # noqa: E402  (data/train.py: IDX reader, models, safetensors writer)

OUT = os.path.join(HERE, "fixtures")
F32 = np.float32
EPS = np.finfo(np.float32).eps

# name -> (bits, scheme, granularity, group size); calibration is minmax throughout
CONFIGS = {
    "w8_sym_tensor": (8, "symmetric", "tensor", 0),
    "w8_asym_tensor": (8, "asymmetric", "tensor", 0),
    "w4_sym_channel": (4, "symmetric", "channel", 0),
    "w4_asym_channel": (4, "asymmetric", "channel", 0),
    "w3_sym_group32": (3, "symmetric", "group", 32),
    "w2_asym_channel": (2, "asymmetric", "channel", 0),
}


def qparams(lo, hi, bits, scheme):
    """qlab_params_from_range in float32: lo, hi are float32 arrays (one per block)."""
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    lo, hi = lo.astype(F32), hi.astype(F32)
    if scheme == "symmetric":
        t = np.maximum(np.abs(lo), np.abs(hi)).astype(F32)
        s = (t / F32(qmax)).astype(F32)
        zp = np.zeros(s.shape, np.int32)
    else:
        flo, fhi = np.minimum(lo, F32(0)), np.maximum(hi, F32(0))
        s = ((fhi - flo) / F32(qmax - qmin)).astype(F32)
        s = np.where(s >= EPS, s, F32(EPS)).astype(F32)
        z = F32(qmin) - np.rint((flo / s).astype(F32))
        zp = np.clip(z, qmin, qmax).astype(np.int32)
    s = np.where(s >= EPS, s, F32(EPS)).astype(F32)
    return s, zp, qmin, qmax


def fake_quant_weight(w, bits, scheme, gran, group):
    """w: numpy float32 weight (PyTorch layout); viewed as [rows, cols]."""
    rows = w.shape[0]
    m = w.reshape(rows, -1)
    cols = m.shape[1]
    if gran == "tensor":
        s, zp, qmin, qmax = qparams(np.array([m.min()]), np.array([m.max()]), bits, scheme)
        out = torch.fake_quantize_per_tensor_affine(torch.from_numpy(m), float(s[0]), int(zp[0]),
                                                    qmin, qmax).numpy()
        return out.reshape(w.shape)
    if gran == "group":
        # Zero padding leaves the parameters unchanged: symmetric uses max|x| and
        # asymmetric widens the range to contain 0 anyway.
        ng = -(-cols // group)
        p = np.zeros((rows, ng * group), F32)
        p[:, :cols] = m
        m2 = p.reshape(rows * ng, group)
    else:
        m2 = m
    s, zp, qmin, qmax = qparams(m2.min(1), m2.max(1), bits, scheme)
    out = torch.fake_quantize_per_channel_affine(torch.from_numpy(np.ascontiguousarray(m2)),
                                                 torch.from_numpy(s), torch.from_numpy(zp), 0,
                                                 qmin, qmax).numpy()
    if gran == "group":
        out = out.reshape(rows, ng * group)[:, :cols]
    return np.ascontiguousarray(out).reshape(w.shape)


def load_model(path):
    """Rebuilds a shipped model from its safetensors (data/train.py's layout)."""
    import json
    import struct
    with open(path, "rb") as f:
        raw = f.read()
    hlen, = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    md = hdr.pop("__metadata__")
    sd = {}
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        sd[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(v["shape"]).copy())
    model = train.MLP() if "mlp" in md["qlab.model"] else train.CNN()
    model.load_state_dict(sd)
    model.eval()
    return model


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    xte_u8, yte = train.load_split("test")
    xte = train.normalise(xte_u8)
    ref = []

    for name in ("mlp", "cnn"):
        model = load_model(os.path.join(ROOT, "data", f"fmnist-{name}.safetensors"))
        pred = train.predict(model, xte)
        pred.astype(np.uint8).tofile(os.path.join(OUT, f"fmnist-{name}.pred.u8"))
        ref.append(f"fp32.{name} {100.0 * (pred == yte).mean():.2f}")
        base = {k: v.clone() for k, v in model.state_dict().items()}
        for cname, (bits, scheme, gran, group) in CONFIGS.items():
            sd = {}
            for k, v in base.items():
                if k.endswith(".weight"):
                    q = fake_quant_weight(v.numpy(), bits, scheme, gran, group)
                    sd[k] = torch.from_numpy(q)
                    mse = float(np.mean((q.astype(np.float64) - v.numpy().astype(np.float64)) ** 2))
                    ref.append(f"mse.{name}.{cname}.{k[:-len('.weight')]} {mse:.9e}")
                else:
                    sd[k] = v
            model.load_state_dict(sd)
            p = train.predict(model, xte)
            ref.append(f"wo.{name}.{cname} {100.0 * (p == yte).mean():.2f}")
        model.load_state_dict(base)

    kernels = {}
    g = torch.Generator().manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=g)

    # conv2d: rectangular kernel, stride 2, padding 1; and stride 1 padding 0
    x = rnd(2, 3, 7, 6)
    w = rnd(4, 3, 3, 2)
    b = rnd(4)
    kernels["conv.in"] = x
    kernels["conv.weight"] = w
    kernels["conv.bias"] = b
    kernels["conv.out_s2p1"] = F.conv2d(x, w, b, stride=2, padding=1)
    kernels["conv.out_s1p0"] = F.conv2d(x, w, b, stride=1, padding=0)
    # maxpool: kernel 3 stride 2, kernel 2 stride 2 on an odd size (floor mode)
    xp = rnd(2, 3, 9, 7)
    kernels["pool.in"] = xp
    kernels["pool.out_k3s2"] = F.max_pool2d(xp, 3, 2)
    kernels["pool.out_k2s2"] = F.max_pool2d(xp, 2, 2)

    # tiny CNN on 3 x 12 x 10 inputs: exercises NCHW <-> NHWC with C > 1, stride, kernels
    tiny = nn.Module()
    tiny.conv1 = nn.Conv2d(3, 5, (3, 2), stride=1, padding=1)
    tiny.conv2 = nn.Conv2d(5, 6, 3, stride=2, padding=1)
    tiny.fc1 = nn.Linear(6 * 3 * 3, 7)
    tiny.fc2 = nn.Linear(7, 4)
    with torch.no_grad():
        for p in tiny.parameters():
            p.copy_(rnd(*p.shape) * 0.5)
        xt = rnd(5, 3, 12, 10)
        outs = []
        h = tiny.conv1(xt)
        outs.append(h)
        h = F.relu(h)
        outs.append(h)
        h = F.max_pool2d(h, 3, 2)
        outs.append(h)
        h = tiny.conv2(h)
        outs.append(h)
        h = F.relu(h)
        outs.append(h)
        h = torch.flatten(h, 1)
        outs.append(h)
        h = tiny.fc1(h)
        outs.append(h)
        h = F.relu(h)
        outs.append(h)
        h = tiny.fc2(h)
        outs.append(h)
    kernels["tiny.in"] = xt
    for i, o in enumerate(outs):
        kernels[f"tiny.out{i}"] = o
    layers = [
        {"kind": "conv2d", "name": "conv1", "weight": "conv1.weight", "bias": "conv1.bias",
         "stride": 1, "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool2d", "kernel": 3, "stride": 2},
        {"kind": "conv2d", "name": "conv2", "weight": "conv2.weight", "bias": "conv2.bias",
         "stride": 2, "padding": 1},
        {"kind": "relu"},
        {"kind": "flatten"},
        {"kind": "linear", "name": "fc1", "weight": "fc1.weight", "bias": "fc1.bias"},
        {"kind": "relu"},
        {"kind": "linear", "name": "fc2", "weight": "fc2.weight", "bias": "fc2.bias"},
    ]
    md = train.model_metadata(layers, mean=0.0, std=1.0)
    md["qlab.input"] = "[3,12,10]"
    train.save_safetensors(os.path.join(OUT, "tiny-cnn.safetensors"), train.state_arrays(tiny), md)
    train.save_safetensors(os.path.join(OUT, "kernels.safetensors"),
                           {k: v.detach().numpy().astype(np.float32) for k, v in kernels.items()})

    # A model qlab never saw: nn.Sequential names, no metadata, one epoch.
    torch.manual_seed(7)
    unseen = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    xtr_u8, ytr = train.load_split("train")
    train.train(unseen, train.normalise(xtr_u8[:20000]), ytr[:20000], 1, seed=7)
    sd = unseen.state_dict()   # "1.weight", "1.bias", "3.weight", "3.bias"
    train.save_safetensors(os.path.join(OUT, "unseen-mlp.safetensors"),
                           {k: v.numpy().astype(np.float32) for k, v in sd.items()})
    p = train.predict(unseen, xte)
    ref.append(f"fp32.unseen {100.0 * (p == yte).mean():.2f}")
    p.astype(np.uint8).tofile(os.path.join(OUT, "unseen-mlp.pred.u8"))

    with open(os.path.join(OUT, "reference.txt"), "w") as f:
        f.write("# generated by tests/model/gen_fixtures.py from PyTorch " + torch.__version__ + "\n")
        f.write("\n".join(ref) + "\n")
    print("\n".join(r for r in ref if not r.startswith("mse.")))


if __name__ == "__main__":
    main()
