#!/usr/bin/python3
"""Trains the two Fashion-MNIST models qlab ships (data/README.md) and saves them as
safetensors with their layer list in __metadata__.

Run with Debian's python (it has torch):  /usr/bin/python3 data/train.py [outdir]

The safetensors writer is written out here (the `safetensors` package is not in Debian):
the format is an unsigned 64-bit little-endian header length, a JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, padded
with spaces to a multiple of 8 bytes, then the raw little-endian tensor data.
The helpers are imported by tests/model/gen_fixtures.py, so they stay importable.
"""
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
# Mean and standard deviation of the 60,000 training pixels scaled to [0, 1], rounded to
# four digits; the models are trained on (x / 255 - MEAN) / STD and qlab applies the same.
MEAN = 0.2860
STD = 0.3530


def read_idx(path):
    """IDX (LeCun's format): big-endian magic 0x00000800 | 0x08 (u8) | ndim, dims, data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split, d=FMNIST_DIR):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(d, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(d, f"{prefix}-labels-idx1-ubyte.gz"))
    return x, y.astype(np.int64)


def normalise(u8, mean=MEAN, std=STD):
    """The exact float32 arithmetic qlab uses: ((float)p / 255.0f - mean) / std, IEEE
    division in float32 (numpy), so both sides feed the network identical inputs."""
    x = u8.astype(np.float32) / np.float32(255.0)
    x = (x - np.float32(mean)) / np.float32(std)
    return x.reshape(-1, 1, 28, 28)


class MLP(nn.Module):
    def __init__(self, sizes=(784, 256, 128, 10)):
        super().__init__()
        self.sizes = sizes
        self.fcs = []
        for i in range(len(sizes) - 1):
            fc = nn.Linear(sizes[i], sizes[i + 1])
            setattr(self, f"fc{i + 1}", fc)
            self.fcs.append(fc)

    def forward(self, x):
        x = torch.flatten(x, 1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i + 1 < len(self.fcs):
                x = F.relu(x)
        return x

    def layers(self):
        out = [{"kind": "flatten"}]
        for i in range(len(self.fcs)):
            n = f"fc{i + 1}"
            out.append({"kind": "linear", "name": n, "weight": n + ".weight", "bias": n + ".bias"})
            if i + 1 < len(self.fcs):
                out.append({"kind": "relu"})
        return out


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))

    @staticmethod
    def layers():
        def conv(n):
            return {"kind": "conv2d", "name": n, "weight": n + ".weight", "bias": n + ".bias",
                    "stride": 1, "padding": 1}

        def lin(n):
            return {"kind": "linear", "name": n, "weight": n + ".weight", "bias": n + ".bias"}

        pool = {"kind": "maxpool2d", "kernel": 2, "stride": 2}
        return [conv("conv1"), {"kind": "relu"}, pool, conv("conv2"), {"kind": "relu"}, pool,
                {"kind": "flatten"}, lin("fc1"), {"kind": "relu"}, lin("fc2")]


def model_metadata(layers, mean=MEAN, std=STD, extra=None):
    """The __metadata__ qlab reads (data/README.md): values must be strings."""
    md = {
        "qlab.format": "1",
        "qlab.layers": json.dumps(layers, separators=(",", ":")),
        "qlab.input": "[1,28,28]",
        "qlab.mean": repr(float(mean)),
        "qlab.std": repr(float(std)),
    }
    if extra:
        md.update(extra)
    return md


_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.uint8): "U8",
           np.dtype(np.int8): "I8", np.dtype(np.int32): "I32", np.dtype(np.int64): "I64",
           np.dtype(np.float64): "F64"}


def save_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> numpy array (C order, little-endian)."""
    header = {}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        b = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def state_arrays(model):
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        out.append(model(torch.from_numpy(x[i:i + batch])).argmax(1).numpy())
    return np.concatenate(out)


def train(model, x, y, epochs, lr=1e-3, batch=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        t0 = time.time()
        total = 0.0
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"  epoch {ep + 1}/{epochs}: loss {total / len(xt):.4f} ({time.time() - t0:.1f} s)",
              flush=True)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    torch.set_num_threads(2)
    torch.manual_seed(0)
    np.random.seed(0)
    xtr_u8, ytr = load_split("train")
    xte_u8, yte = load_split("test")
    xtr, xte = normalise(xtr_u8), normalise(xte_u8)
    print(f"train pixels: mean {xtr_u8.mean() / 255:.4f} std {(xtr_u8 / 255).std():.4f}")

    for name, ctor, epochs in (("mlp", MLP, 8), ("cnn", CNN, 4)):
        torch.manual_seed(0)
        model = ctor()
        print(f"{name}: training {epochs} epochs", flush=True)
        train(model, xtr, ytr, epochs)
        pred = predict(model, xte)
        acc = float((pred == yte).mean()) * 100
        print(f"{name}: PyTorch FP32 test accuracy {acc:.2f} % ({int((pred == yte).sum())}/10000)",
              flush=True)
        layers = model.layers()
        md = model_metadata(layers, extra={"qlab.model": f"fmnist-{name}",
                                           "qlab.pytorch_accuracy": f"{acc:.2f}"})
        save_safetensors(os.path.join(outdir, f"fmnist-{name}.safetensors"), state_arrays(model), md)


if __name__ == "__main__":
    main()
