"""The networks of `golden_net` in PyTorch, on the same numpy weights.

The reference libraries that need PyTorch (pytorch-grad-cam, captum,
eclique/RISE) explain this port; tfcaf explains `golden_net.keras_model`.
Both compute the same function: kernels are copied (HWIO -> OIHW for
convolutions, (in, out) -> (out, in) for Dense), 'same' 3x3 convolutions are
padding=1, and images go NHWC -> NCHW. tools/make_torch_golden.py stores the
torch logits and embeddings of the sample images, and
tests/test_golden_torch.py checks that Keras reproduces them (1e-5).

Every ReLU is its own module (never inplace) so that pytorch-grad-cam can hook
the output of `features_relu`, the counterpart of Keras' "features" layer
(its activation is fused there), and AblationCAM can swap that module out.

Only imported in the side virtualenv (.venv-torch); the project's tests never
import torch.
"""

import sys
import types

import numpy as np
import torch

import golden_net


def to_nchw(images):
    """(B, H, W, C) numpy -> (B, C, H, W) float32 torch tensor."""
    return torch.from_numpy(np.ascontiguousarray(
        np.asarray(images, np.float32).transpose(0, 3, 1, 2)))


def to_nhwc(array):
    """(B, C, H, W) tensor or array -> (B, H, W, C) numpy."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(array).transpose(0, 2, 3, 1))


class GoldenNet(torch.nn.Module):
    """golden_net's classifier (logits (B, 5)) or embedding net
    (L2-normalised (B, 8)); input (B, 3, 32, 32) in [0, 1]."""

    def __init__(self, weights, kind="classifier"):
        super().__init__()
        if kind not in ("classifier", "embedding"):
            raise ValueError(f"kind must be 'classifier' or 'embedding', got {kind!r}")
        self.kind = kind
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv1_relu = torch.nn.ReLU()
        self.pool1 = torch.nn.MaxPool2d(2)
        self.features = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.features_relu = torch.nn.ReLU()  # = Keras "features" output
        self.head_conv = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.head_relu = torch.nn.ReLU()
        self.hidden = torch.nn.Linear(16, 12)
        self.hidden_relu = torch.nn.ReLU()
        if kind == "classifier":
            self.out = torch.nn.Linear(12, golden_net.NUM_CLASSES)
            names = {"out": "logits"}
        else:
            self.out = torch.nn.Linear(12, golden_net.EMBEDDING_DIM)
            names = {"out": "embedding"}
        with torch.no_grad():
            for module_name in ("conv1", "features", "head_conv", "hidden", "out"):
                kernel, bias = weights[names.get(module_name, module_name)]
                module = getattr(self, module_name)
                if kernel.ndim == 4:
                    kernel = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                else:
                    kernel = kernel.T  # (in, out) -> (out, in)
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
                module.bias.copy_(torch.from_numpy(bias))
        self.eval()

    def forward(self, x):
        x = self.pool1(self.conv1_relu(self.conv1(x)))
        x = self.features_relu(self.features(x))
        x = self.head_relu(self.head_conv(x))
        x = x.mean(dim=(2, 3))  # GlobalAveragePooling2D
        x = self.hidden_relu(self.hidden(x))
        x = self.out(x)
        if self.kind == "embedding":
            # Keras' UnitNormalization: x / max(|x|, 1e-12) up to rounding.
            x = torch.nn.functional.normalize(x, dim=1)
        return x


def torch_model(weights, kind="classifier"):
    """The network of `golden_net.keras_model(weights, kind)` in PyTorch."""
    return GoldenNet(weights, kind)


def install_torchvision_stand_in():
    """grad-cam imports torchvision at module level (preprocess_image,
    SESS's resize, the Faster R-CNN target's box_iou), none of which the
    golden run calls. PyPI's torchvision does not import beside the local
    CPU torch 2.13 wheel, so a stand-in module answers those imports and
    raises if anything in it is ever used."""
    def unused(*args, **kwargs):
        raise RuntimeError("torchvision stand-in: not used by the golden run")

    names = ("torchvision", "torchvision.transforms",
             "torchvision.transforms.functional", "torchvision.ops")
    for name in names:
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: unused
        module.__stand_in__ = True
        sys.modules[name] = module
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision"].ops = sys.modules["torchvision.ops"]
    sys.modules["torchvision.transforms"].functional = \
        sys.modules["torchvision.transforms.functional"]
