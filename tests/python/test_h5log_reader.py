"""h5py reads what the engine writes: an H5Log while its writer still holds the file open
(after flush), a checkpoint (values and zlib-compatible CRC-32 attributes) and plain tensor
files loaded into PyTorch.

Usage: /usr/bin/python3 test_h5log_reader.py PATH_TO_sinklab_tests
"""
import os
import subprocess
import sys
import tempfile
import zlib

import h5py
import numpy as np
import torch


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def main(tests_binary):
    w = (0.25 * np.arange(35, dtype=np.float32) - 3).reshape(5, 7)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SINKLAB_PY_DIR=tmp)
        writer = subprocess.Popen([tests_binary, "[.h5log-python]"], env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            for line in writer.stdout:
                if line.strip() == "flushed":
                    break
            else:
                raise AssertionError("the writer exited before flushing: " + str(writer.wait()))

            # The writer is still running with log.h5 open.
            with h5py.File(os.path.join(tmp, "log.h5"), "r") as f:
                loss, steps = f["loss"][:], f["loss_step"][:]
                expect(loss.shape == (5000,) and loss.dtype == np.float32, f"loss {loss.shape} {loss.dtype}")
                expect(np.array_equal(steps, np.arange(5000)), "loss_step is 0..4999")
                expect(np.allclose(loss, 1.0 / (np.arange(5000) + 1)), "loss values")
                expect(f["loss"].compression == "gzip", "gzip compression")
                alpha = f["attn/alpha"][:]
                expect(alpha.shape == (3, 5, 7), f"attn/alpha shape {alpha.shape}")
                expect(np.array_equal(alpha[2], w), "attn/alpha rows")
                expect(list(f["attn/alpha_step"][:]) == [0, 100, 200], "attn/alpha_step")
                expect(f.attrs["run"] in (b"py", "py"), f"run attribute {f.attrs['run']!r}")
            writer.stdin.write("read\n")
            writer.stdin.flush()
            expect(writer.wait(timeout=60) == 0, "the writer test passed")
        finally:
            if writer.poll() is None:
                writer.kill()

        with h5py.File(os.path.join(tmp, "ckpt.h5"), "r") as f:
            ds = f["tensors/param/blocks.0.attn.wq"]
            expect(np.array_equal(ds[()], w), "checkpoint tensor values")
            expect(int(ds.attrs["crc32"]) == zlib.crc32(ds[()].tobytes()), "tensor crc32 as zlib")
            step = f["ints/step"]
            expect(list(step[()]) == [42] and int(step.attrs["crc32"]) == zlib.crc32(step[()].tobytes()), "ints")
            config = f["strings/config"]
            expect(config[()] == b"lr: 0.001\n", f"config {config[()]!r}")
            expect(int(config.attrs["crc32"]) == zlib.crc32(b"lr: 0.001\n"), "string crc32")

        with h5py.File(os.path.join(tmp, "arrays.h5"), "r") as f:
            t = torch.from_numpy(f["x/y.z"][()])
            expect(t.dtype == torch.float32 and torch.equal(t, torch.from_numpy(w)), "arrays.h5 into torch")
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
