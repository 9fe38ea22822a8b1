"""Evaluation throughput (images/s per method) on one device, under a
mirrored strategy on 2 logical CPUs, and on 2 local workers
(MultiWorkerMirroredStrategy, TF_CONFIG): bin/evaluate on the digits test
split with the untrained tiny_resnet ADL classifier at 32 px and the box
metrics, each configuration in fresh processes. The rate is the pass's own
(the progress line's images/s: start-up and the report left out); a
2-worker rate is the sum of the workers'. The one-device run is the
baseline of the same invocation.

    .venv/bin/python bench/evaluate_distributed.py [--methods gradcam,scorecam,l2caf]
        [--images 128] [--batch-size 16] [--data-dir DIR]

On a machine whose replicas share the same cores (logical CPUs, this
repository's 2-core CI), the ratio measures what distribution costs; on
separate GPUs or hosts it is the speed-up.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from tfcaf.distribute.rendezvous import local_ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = re.compile(r"\] (\d+)/(\d+) images\s+([0-9.]+) img/s")


def _tiny_model(path):
    subprocess.run([sys.executable, "-c", (
        "import sys; from tfcaf.models import build_model; "
        "build_model('tiny_resnet', 'adl', num_classes=10, image_size=32, seed=0)"
        ".save(sys.argv[1])"), path], check=True, stderr=subprocess.DEVNULL)


def _command(model, out, method, args, *extra):
    return [sys.executable, os.path.join(REPO, "bin", "evaluate"), f"--model={model}",
            "--image_size=32", f"--max_images={args.images}", f"--batch_size={args.batch_size}",
            f"--methods={method}", "--metric=iou,maxboxacc", f"--out_dir={out}",
            *([f"--data_dir={args.data_dir}"] if args.data_dir else []), *extra]


def _rate(stderr):
    """The last progress line's images/s."""
    rates = RATE.findall(stderr)
    if not rates:
        raise RuntimeError("no progress line in:\n" + stderr[-2000:])
    return float(rates[-1][2])



def measure(model, folder, method, args):
    """{configuration: images/s} of `method`."""
    def run(name, *extra, env=None):
        out = os.path.join(folder, f"{method}-{name}")
        done = subprocess.run(_command(model, out, method, args, *extra), env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        return _rate(done.stderr)

    rates = {"1 device": run("one"),
             "mirrored, 2 logical CPUs": run("mirrored", "--strategy=mirrored",
                                              "--logical_cpus=2")}
    cluster = {"worker": [f"127.0.0.1:{p}" for p in local_ports(2)]}
    out = os.path.join(folder, f"{method}-workers")
    workers = [subprocess.Popen(
        _command(model, out, method, args, "--strategy=multi_worker"),
        env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {
            "type": "worker", "index": i}})}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    logs = [w.communicate()[1] for w in workers]
    if any(w.returncode for w in workers):
        raise RuntimeError("\n".join(log[-2000:] for log in logs))
    rates["2 local workers"] = sum(_rate(log) for log in logs)
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="gradcam,scorecam,l2caf")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "tiny.keras")
        _tiny_model(model)
        table = {}
        for method in args.methods.split(","):
            table[method] = measure(model, folder, method, args)
            base = table[method]["1 device"]
            print(method, "  ".join(f"{k}: {v:.1f} img/s ({v / base:.2f}x)"
                                    for k, v in table[method].items()), flush=True)
    print(json.dumps({"images_per_s": table, "images": args.images,
                      "batch_size": args.batch_size, "cpu_cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
