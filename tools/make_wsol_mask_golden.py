"""Writes tests/data/golden/wsolevaluation_masks.npz: PxAP as
clovaai/wsolevaluation computes it (evaluation.py @ 96f4b88, `get_mask`,
`MaskEvaluator.accumulate` / `compute`), on planted heatmaps and masks.

The reference's own files are read from a clone's git directory
(`--wsol-git-dir`; never committed) and run as they are, with three
stand-ins for what this code path never touches or no longer exists:
`torch.utils.data` and `torchvision.transforms` (imported at module level,
used only by its data loaders), `munch.Munch` (an attribute dict), and
`np.float`, the alias of `float` that NumPy 1.24 removed.

Every image gets instance mask PNGs (0/255) and an ignore PNG, listed in a
localization.txt, as its OpenImages metadata; `get_mask` reads them back
at 224 × 224 (INTER_NEAREST). Usage:
    .venv/bin/python tools/make_wsol_mask_golden.py --wsol-git-dir DIR/.git
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import types

import cv2
import numpy as np

import golden_net

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests/data/golden/wsolevaluation_masks.npz"
SIZE = 224
COMMIT = "96f4b88"


def stand_ins():
    """The modules the reference imports at load time but this path never
    calls (torch, torchvision) or uses only as an attribute dict (munch)."""
    class Munch(dict):
        __getattr__, __setattr__ = dict.__getitem__, dict.__setitem__
    modules = {"munch": types.SimpleNamespace(Munch=Munch)}
    for name in ("torch", "torch.utils", "torch.utils.data", "torchvision",
                 "torchvision.transforms"):
        modules[name] = types.ModuleType(name)
    modules["torch.utils.data"].DataLoader = modules["torch.utils.data"].Dataset = object
    sys.modules.update(modules)
    np.float = float  # removed in NumPy 1.24; the reference's dtype checks use it


def load_reference(git_dir, folder):
    for name in ("evaluation.py", "data_loaders.py", "util.py", "config.py"):
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{COMMIT}:{name}"],
                              check=True, capture_output=True, text=True).stdout
        (folder / name).write_text(text)
    sys.path.insert(0, str(folder))
    stand_ins()
    import evaluation
    return evaluation


def planted(rng):
    """(heatmaps (N, 224, 224) float64 in [0, 1], instance masks: N lists of
    (224, 224) bool, ignore boxes (N, 224, 224) bool)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    heatmaps, instances, ignores = [], [], []
    for i in range(5):
        cy, cx = rng.uniform(0.3, 0.7, 2)
        heat = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(0.01, 0.05))
        heat = heat + 0.2 * rng.uniform(size=heat.shape)
        heat = (heat - heat.min()) / (heat.max() - heat.min())
        if i == 3:  # values on bin edges, ties, 0 and 1 exactly
            heat = np.round(heat * 50) / 50
        objects = []
        for _ in range(1 + i % 2):
            y0, x0 = rng.integers(20, 120, 2)
            h, w = rng.integers(40, 100, 2)
            mask = np.zeros((SIZE, SIZE), bool)
            mask[y0:y0 + h, x0:x0 + w] = True
            objects.append(mask)
        ignore = np.zeros((SIZE, SIZE), bool)
        if i % 2 == 0:
            ignore[150:210, 10:90] = True
        heatmaps.append(heat)
        instances.append(objects)
        ignores.append(ignore)
    return np.array(heatmaps), instances, np.array(ignores)


def write_metadata(root, instances, ignores):
    """OpenImages-style mask PNGs and localization.txt under `root`."""
    lines = []
    for i, (objects, ignore) in enumerate(zip(instances, ignores)):
        ignore_name = f"ignore/{i}.png"
        for j, mask in enumerate(objects):
            name = f"masks/{i}_{j}.png"
            os.makedirs(root / "masks", exist_ok=True)
            cv2.imwrite(str(root / name), mask.astype(np.uint8) * 255)
            lines.append(f"{i}.jpg,{name},{ignore_name if j == 0 else ''}")
        os.makedirs(root / "ignore", exist_ok=True)
        cv2.imwrite(str(root / ignore_name), ignore.astype(np.uint8) * 255)
    (root / "localization.txt").write_text("\n".join(lines) + "\n")


def run_reference(evaluation, root, heatmaps, interval):
    """The reference's PxAP (its ×100 AUC), its histograms and GT masks."""
    import data_loaders
    metadata = data_loaders.configure_metadata(str(root))
    evaluator = evaluation.MaskEvaluator(
        metadata=metadata, dataset_name="OpenImages", split="test",
        cam_threshold_list=list(np.arange(0, 1, interval)), iou_threshold_list=[50],
        mask_root=str(root), multi_contour_eval=False)
    masks = []
    for i, heat in enumerate(heatmaps):
        evaluator.accumulate(heat.astype(np.float64), f"{i}.jpg")
        masks.append(evaluation.get_mask(str(root), evaluator.mask_paths[f"{i}.jpg"],
                                         evaluator.ignore_paths[f"{i}.jpg"]))
    return (evaluator.compute(), evaluator.gt_true_score_hist,
            evaluator.gt_false_score_hist, np.array(masks))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wsol-git-dir", required=True)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    heatmaps, instances, ignores = planted(rng)
    # Stored as 12-bit codes (heatmap = code / 4096, exact in float32): a
    # small file; values on and off the bin edges alike.
    codes = np.round(heatmaps * 4096).astype(np.uint16)
    heatmaps = codes / np.float32(4096)
    arrays, meta = {"heatmap_codes": codes, "ignore": ignores}, []
    for i, objects in enumerate(instances):
        arrays[f"instances.{i}"] = np.array(objects)
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        (folder / "code").mkdir()
        evaluation = load_reference(args.wsol_git_dir, folder / "code")
        write_metadata(folder / "data", instances, ignores)
        for interval in (0.001, 0.01):
            # float32 heatmaps, as tfcaf's, widened to the reference's float64
            auc, true_hist, false_hist, masks = run_reference(
                evaluation, folder / "data", heatmaps.astype(np.float32), interval)
            name = f"MaskEvaluator.interval{interval:g}"
            meta.append({"name": name, "method": "pxap", "settings": {"interval": interval}})
            arrays.update({f"{name}.auc_percent": np.float64(auc),
                           f"{name}.gt_true_score_hist": true_hist,
                           f"{name}.gt_false_score_hist": false_hist})
            arrays["gt_masks"] = masks
    info = {"reference": f"clovaai/wsolevaluation@{COMMIT}", "numpy": np.__version__}
    print(f"wrote {OUT} ({golden_net.save(OUT, meta, info, arrays):.0f} KiB)")


if __name__ == "__main__":
    main()
