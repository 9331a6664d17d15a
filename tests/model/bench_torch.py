#!/usr/bin/python3
"""PyTorch side of bench-model-fp32: FP32 evaluation of data/fmnist-cnn.safetensors on the
10,000 Fashion-MNIST test images with 2 threads, batches of 1000, best of 3 runs.
Prints one line: "torch <wall seconds> <accuracy percent> <CPU seconds of that run>"."""
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("QLAB_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "model"))
sys.path.insert(0, os.path.join(ROOT, "data"))
import train  # noqa: E402
from gen_fixtures import load_model  # noqa: E402

torch.set_num_threads(2)
x_u8, y = train.load_split("test")
x = torch.from_numpy(train.normalise(x_u8))
model = load_model(os.path.join(ROOT, "data", "fmnist-cnn.safetensors"))
best, best_cpu = float("inf"), 0.0
with torch.no_grad():
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if t < best:
            best, best_cpu = t, c
acc = 100.0 * float((pred.numpy() == y).mean())
print(f"torch {best:.4f} {acc:.2f} {best_cpu:.4f}")
