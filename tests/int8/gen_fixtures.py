#!/usr/bin/python3
"""PyTorch static post-training quantization of qlab's shipped models, as the reference
for qlab's W8A8 evaluation (tests/int8/test-w8a8.c).

Run with Debian's python (it has torch 1.13):  /usr/bin/python3 tests/int8/gen_fixtures.py

Same weights (data/fmnist-*.safetensors), same calibration images: the 1000 training
indices qlab draws with seed 20260101 (qlab_calib_indices: a partial Fisher-Yates shuffle
driven by splitmix64, reimplemented below), MinMaxObserver activations (quint8, full
range, per tensor affine: the same real grid as qlab's signed int8 with zp - 128),
per-channel symmetric int8 weights with quant range [-127, 127] so that
scale = max|w| / 127 exactly as PRODUCT.md §3 defines it. FX graph mode fuses
linear/conv + relu as qlab does. Writes fixtures/ptq-<model>.txt (format below).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "data"))
import train as T  # noqa: E402  (the models and the exact input normalisation)

from torch.ao.quantization import (MinMaxObserver, PerChannelMinMaxObserver, QConfig,  # noqa: E402
                                   QConfigMapping)
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx  # noqa: E402

SEED = 20260101
NCALIB = 1000
M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def calib_indices(total, n, seed):
    perm = list(range(total))
    s = seed
    out = []
    for i in range(n):
        s, r = splitmix64(s)
        j = i + r % (total - i)
        perm[i], perm[j] = perm[j], perm[i]
        out.append(perm[i])
    return out


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    hlen, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        assert t["dtype"] == "F32"
        b, e = t["data_offsets"]
        out[name] = torch.from_numpy(
            np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(t["shape"]).copy())
    return out, meta


def main():
    torch.set_num_threads(2)
    engine = "onednn" if "onednn" in torch.backends.quantized.supported_engines else "qnnpack"
    torch.backends.quantized.engine = engine
    xtr_u8, _ = T.load_split("train")
    xte_u8, yte = T.load_split("test")
    idx = calib_indices(len(xtr_u8), NCALIB, SEED)
    xcal = torch.from_numpy(T.normalise(xtr_u8[idx]))
    xte = torch.from_numpy(T.normalise(xte_u8))
    qconfig = QConfig(
        activation=MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                            reduce_range=False),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                  qscheme=torch.per_channel_symmetric,
                                                  quant_min=-127, quant_max=127))
    for name, ctor in (("mlp", T.MLP), ("cnn", T.CNN)):
        sd, _ = load_safetensors(os.path.join(ROOT, "data", f"fmnist-{name}.safetensors"))
        model = ctor()
        model.load_state_dict(sd)
        model.eval()
        with torch.no_grad():
            fp32 = model(xte).argmax(1).numpy()
            prepared = prepare_fx(model, QConfigMapping().set_global(qconfig), (xcal[:1],))
            prepared(xcal)
            qmodel = convert_fx(prepared)
            q = qmodel(xte).argmax(1).numpy()
        fp_acc = float((fp32 == yte).mean()) * 100
        q_acc = float((q == yte).mean()) * 100
        print(f"{name}: engine {engine}, FP32 {fp_acc:.2f} %, PTQ W8A8 {q_acc:.2f} %")
        # Quantization parameters PyTorch chose, in graph order (input first): qlab's
        # minmax scales must match them (as signed codes: zp - 128).
        qparams = []
        for n, mod in qmodel.named_modules():
            if hasattr(mod, "scale") and hasattr(mod, "zero_point") and n:
                qparams.append((n, float(mod.scale), int(mod.zero_point) - 128))
        for n, buf in qmodel.named_buffers():
            if n.endswith("scale_0"):
                zp = int(getattr(qmodel, n.replace("scale", "zero_point")))
                qparams.insert(0, ("input", float(buf), zp - 128))
        with open(os.path.join(HERE, "fixtures", f"ptq-{name}.txt"), "w") as f:
            f.write(f"# PyTorch {torch.__version__} static PTQ (tests/int8/gen_fixtures.py)\n")
            f.write(f"engine {engine}\nseed {SEED}\ncalib {NCALIB}\n")
            f.write("indices " + " ".join(map(str, idx)) + "\n")
            f.write(f"fp32_correct {int((fp32 == yte).sum())}\n")
            f.write(f"ptq_correct {int((q == yte).sum())}\n")
            for n, s, z in qparams:
                f.write(f"qparams {n} {s!r} {z}\n")
            f.write("ptq_pred " + "".join(map(str, q.tolist())) + "\n")


if __name__ == "__main__":
    main()
