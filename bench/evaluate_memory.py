"""Peak memory (RSS) of an evaluation pass against its image count: the
digits test split repeated to --counts images, Grad-CAM on the untrained
tiny_resnet ADL classifier at 32 px, the box, mask and Average Drop
metrics, each count in a fresh process (`resource.getrusage` of the child).

    .venv/bin/python bench/evaluate_memory.py [--counts 1000,10000]
        [--data-dir DIR] [--batch-size 64]

What a pass keeps per image is a few numbers per metric and method (and
the outputs); the maps of a batch are dropped once its metrics are
computed, and the box and mask metrics keep per-batch counts.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, numpy as np
from tfcaf.data import load_dataset
from tfcaf.evaluation import EvalConfig, KerasAdapter, evaluate
from tfcaf.models import build_model
count, data_dir, out, batch = int(sys.argv[1]), sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
test = load_dataset("digits", data_dir, "test", image_size=32)
repeated = test.subset(np.resize(np.arange(len(test)), count))
model = build_model("tiny_resnet", "adl", num_classes=10, image_size=32, seed=0)
evaluate(KerasAdapter(model), repeated, out, EvalConfig(
    metrics=("iou", "maxboxacc", "pxap", "average_drop"), methods=("gradcam",),
    batch_size=batch))
"""


def peak_rss_mib(count, data_dir, batch_size):
    """(peak RSS in MiB, seconds) of one evaluation of `count` images."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.time()
        subprocess.run([sys.executable, "-c", CHILD, str(count), data_dir or "",
                        os.path.join(folder, "out"), str(batch_size)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        seconds = time.time() - started
    # ru_maxrss of the largest child so far, in KiB on Linux: run the counts
    # in increasing order.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    rows = {}
    for count in sorted(int(c) for c in args.counts.split(",")):
        rss, seconds = peak_rss_mib(count, args.data_dir, args.batch_size)
        rows[count] = {"peak_rss_mib": round(rss, 1), "seconds": round(seconds, 1)}
        print(count, rows[count], flush=True)
    print(json.dumps({"images": rows, "cpu_cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
