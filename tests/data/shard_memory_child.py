"""Child process of test_shards' memory test: trains pix2pix (tiny networks) from a pair shard
set several times larger than the resident-memory growth it is allowed, sampling VmRSS.

    python shard_memory_child.py WORKDIR PAIRS STEPS

Writes WORKDIR/memory.json: {"set_bytes", "rss": [[step, bytes], ...], "control_bytes"}.
The set holds PAIRS 256 x 256 pairs (RGB PNG of noise, 16-bit depth PNG of noise; 32 distinct
pairs cycled, each record written out in full), resized to the tiny preset's 36 px and cropped
to 32 in the stream. After training, the control reads every record into a Python list, as a
pipeline that loads the set whole would: its growth shows that the sampling sees the set.
"""
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_set(root: Path, pairs: int) -> int:
    from tfgan3d.data import shards
    rng = np.random.default_rng(0)
    distinct = [(png(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)),
                 png(rng.integers(1000, 9000, (256, 256), dtype=np.uint16)))
                for _ in range(32)]
    meta_json = {"depth_encoding": "png16", "depth_scale": 0.001, "max_depth": 10.0}
    for split, n in (("train", pairs), ("test", 4)):
        with shards.ShardWriter(root / split, "pairs", 50, split=split) as writer:
            for i in range(n):
                rgb, depth = distinct[i % len(distinct)]
                writer.write({"input": rgb, "depth": depth, "name": f"{i:06d}",
                              "invalid_fraction": np.float32(0.0)})
            writer.meta.update(dataset_json=meta_json, invalid_counts={"0.0000": n},
                               has_depth=True, has_labels=False, layout="folders")
    return sum(p.stat().st_size for p in (root / "train").glob("*.tfrecord"))


def main(workdir, pairs, steps):
    workdir = Path(workdir)
    set_bytes = write_set(workdir / "set", pairs)
    from tfgan3d.trainers import runner
    samples = []
    on_batch_end = runner.RunMonitor.on_train_batch_end

    def sampled(self, batch, logs=None):
        on_batch_end(self, batch, logs)
        step = int(self.step.numpy())
        if step % 10 == 0:
            samples.append([step, rss_bytes()])

    runner.RunMonitor.on_train_batch_end = sampled
    runner.run_mode("pix2pix", {"preset": "tiny", "data": str(workdir / "set"),
                                "run_dir": str(workdir / "runs"), "steps": steps,
                                "batch_size": 8, "max_invalid_fraction": None,
                                "checkpoint_every": 10_000, "sample_every": 10_000,
                                "log_every": 50})
    import tensorflow as tf
    from tfgan3d.data import shards
    before = rss_bytes()
    held = [r.numpy() for r in tf.data.TFRecordDataset(
        shards.shard_paths(workdir / "set" / "train"))]
    control = rss_bytes() - before
    (workdir / "memory.json").write_text(json.dumps(
        {"set_bytes": set_bytes, "rss": samples, "control_bytes": control,
         "records": len(held)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
