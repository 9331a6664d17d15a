#!/usr/bin/python3
"""make-seeds.py — writes the small seed corpora in corpus/<target>/ (run with
/usr/bin/python3 from anywhere; the output is committed)."""
import gzip
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# --- experiment: relative paths resolve from <source root>/data ----------------------
put('experiment', 'mlp-min.yaml', """name: seed
model: {path: fmnist-mlp.safetensors}
sweep:
  bits: [4, 8]
  scheme: [symmetric, asymmetric]
  granularity: [tensor, channel, "group:32"]
  calibration: [minmax, "percentile:99.9", mse, entropy]
""")
put('experiment', 'mlp-full.yaml', """name: full
description: every key
model:
  path: fmnist-mlp.safetensors
  input: [1, 28, 28]
  normalize: {mean: 0.286, std: 0.353}
  layers:
    - {kind: flatten}
    - {kind: linear, name: fc1, weight: fc1.weight, bias: fc1.bias}
    - {kind: relu}
    - {kind: linear, name: fc2}
    - {kind: relu}
    - {kind: linear, name: fc3, bias: ""}
dataset: {dir: /usr/share/datasets/fashion-mnist}
calibration: {samples: 100, seed: 7}
workers: 2
sweep:
  bits: [2, 3, 4, 6, 8, 16]
  scheme: [symmetric]
  granularity: [channel]
  calibration: [minmax]
  activations: [fp32, int8]
  act_calibration: [minmax, "percentile:99.99"]
overrides:
  - {layer: fc1, bits: 8, granularity: channel}
  - {layer: fc3, fp32: true}
exclude:
  - {bits: 2, granularity: channel}
""")
put('experiment', 'cnn.yaml', """name: cnn
model:
  path: fmnist-cnn.safetensors
  input: [1, 28, 28]
  layers:
    - {kind: conv2d, name: conv1, stride: 1, padding: 1}
    - {kind: relu}
    - {kind: maxpool2d, kernel: 2, stride: 2}
    - {kind: conv2d, name: conv2, padding: 1}
    - {kind: relu}
    - {kind: maxpool2d, kernel: 2}
    - {kind: flatten}
    - {kind: linear, name: fc1}
    - {kind: relu}
    - {kind: linear, name: fc2}
sweep: {bits: [4], scheme: [asymmetric], granularity: ["group:16"], calibration: [mse]}
""")
put('experiment', 'bad-calib.yaml', """name: x
model: {path: fmnist-mlp.safetensors}
sweep: {bits: [4], scheme: [symmetric], granularity: [tensor], calibration: ["precentile:99"]}
""")

# --- safetensors (first byte: flags; bit 0 = allow integer dtypes) --------------------


def st(tensors, meta=None, pad=0):
    hdr, data = {}, b''
    for name, arr in tensors:
        dt = {np.float32: 'F32', np.float16: 'F16', np.uint8: 'U8', np.int8: 'I8',
              np.int16: 'I16', np.int32: 'I32'}[arr.dtype.type]
        b = arr.tobytes()
        hdr[name] = {'dtype': dt, 'shape': list(arr.shape),
                     'data_offsets': [len(data), len(data) + len(b)]}
        data += b
    if meta:
        hdr['__metadata__'] = meta
    h = json.dumps(hdr, separators=(',', ':')).encode() + b' ' * pad
    return struct.pack('<Q', len(h)) + h + data


rng = np.random.default_rng(1)
w1 = rng.standard_normal((4, 6)).astype(np.float32)
b1 = rng.standard_normal(4).astype(np.float32)
w2 = rng.standard_normal((3, 4)).astype(np.float32)
layers = [{'kind': 'flatten'}, {'kind': 'linear', 'name': 'fc1', 'weight': 'fc1.weight',
                                'bias': 'fc1.bias'}, {'kind': 'relu'},
          {'kind': 'linear', 'name': 'fc2', 'weight': 'fc2.weight', 'bias': ''}]
meta = {'qlab.format': '1', 'qlab.layers': json.dumps(layers), 'qlab.input': '[1,2,3]',
        'qlab.mean': '0.5', 'qlab.std': '0.25'}
put('safetensors', 'mlp.st', b'\0' + st([('fc1.weight', w1), ('fc1.bias', b1),
                                         ('fc2.weight', w2)], meta))
put('safetensors', 'f16.st', b'\0' + st([('w', w1.astype(np.float16))], pad=3))
put('safetensors', 'int.st', b'\1' + st([('q', np.arange(6, dtype=np.int8).reshape(2, 3)),
                                         ('u', np.arange(4, dtype=np.uint8)),
                                         ('s', np.arange(2, dtype=np.int16)),
                                         ('z', np.arange(3, dtype=np.int32))]))
put('safetensors', 'conv.st', b'\0' + st([('conv1.weight', rng.standard_normal(
    (2, 1, 3, 3)).astype(np.float32))], {'qlab.layers': json.dumps(
        [{'kind': 'conv2d', 'name': 'conv1', 'stride': 1, 'padding': 1},
         {'kind': 'maxpool2d', 'kernel': 2}, {'kind': 'flatten'}])}))
put('safetensors', 'empty.st', b'\0' + st([]))

# --- npy -----------------------------------------------------------------------------


def npy(arr, version=(1, 0)):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr)) \
        if version == (1, 0) else \
        np.lib.format.write_array_header_2_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    return buf.getvalue() + arr.tobytes()


put('npy', 'f4-2d.npy', npy(rng.standard_normal((3, 5)).astype(np.float32)))
put('npy', 'f8-1d.npy', npy(rng.standard_normal(7)))
put('npy', 'f4-4d.npy', npy(rng.standard_normal((1, 2, 2, 3)).astype(np.float32)))
put('npy', 'f4-v2.npy', npy(rng.standard_normal((2, 2)).astype(np.float32), (2, 0)))
put('npy', 'fortran.npy', npy(np.asfortranarray(np.ones((2, 3), np.float32))).replace(
    b"'fortran_order': False", b"'fortran_order': True"))

# --- idx: 2-byte little-endian split, images file, labels file -------------------------


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims) + data


img = idx([3, 2, 2], bytes(range(12)))
lab = idx([3], bytes([0, 1, 9]))
put('idx', 'plain', struct.pack('<H', len(img)) + img + lab)
gi, gl = gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)
put('idx', 'gzip', struct.pack('<H', len(gi)) + gi + gl)
put('idx', 'mixed', struct.pack('<H', len(gi)) + gi + lab)
put('idx', 'mismatch', struct.pack('<H', len(img)) + img + idx([2], bytes([1, 2])))

# --- decode: 8-byte data area size, then a message --------------------------------------


def msg(mtype, payload, mid=1):
    return struct.pack('<Q', 1 << 20) + struct.pack('<IIQ', mtype, 16 + len(payload), mid) \
        + payload


put('decode', 'ping', msg(7, b'hello'))
put('decode', 'status', msg(3, struct.pack('<Q', 42)))
put('decode', 'cancel', msg(2, struct.pack('<Q', 1)))
put('decode', 'list', msg(4, struct.pack('<QQ', 0, 4096)))
put('decode', 'subscribe', msg(5, struct.pack('<QII', 0, 1, 0)))
put('decode', 'quant', msg(6, struct.pack('<5If7Q', 8, 1, 3, 32, 2, 99.9, 4, 64,
                                          0, 1024, 2048, 4096, 64)))
sub = struct.pack('<IIQQ', 1, 0, 0, 0) + b'/tmp/x.yaml'.ljust(1024, b'\0')
put('decode', 'submit-path', msg(1, sub))
put('decode', 'submit-yaml', msg(1, struct.pack('<IIQQ', 2, 0, 128, 300) + bytes(1024)))
