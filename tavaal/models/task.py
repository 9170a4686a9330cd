"""Task learners: the models whose labels are being acquired.

Every task learner maps a batch ``x`` to ``(logits, feature, stages)``:

* ``logits``  (B, K) class scores;
* ``feature`` (B, F) the penultimate representation (pooled ResNet feature, last MLP hidden
  layer), returned *before* dropout; Core-set runs k-center greedy on it;
* ``stages``  list of intermediate activations the Ranker (loss-prediction module) reads:
  the four ResNet stage outputs (B, C_k, H_k, W_k), or the MLP's mid-layer activation (B, h).

and exposes ``stage_channels`` (channel count of each entry of ``stages``), ``feature_dim`` and
``num_classes``. ``self.dropout`` (an ``nn.Dropout``) sits between ``feature`` and the
classifier; MC-dropout switches just that module to train mode at inference.

Initialisation is PyTorch's default, as in the official TA-VAAL code (no custom init).

Bring your own model: :class:`TappedClassifier` turns any classifier ``nn.Module`` into a task
learner by forward hooks on named submodules (the Ranker's taps, the feature layer);
:func:`resolve_model` / :func:`build_user_model` describe and rebuild it from an import path
(``"package.module:factory"`` + kwargs, or ``"torchvision:resnet50"``), which checkpoints
record so that export and scoring work for such models.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import logging
import math
from typing import Callable, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .drn import BasicBlock, build_drn, check_sizes

log = logging.getLogger(__name__)

__all__ = ["TappedClassifier", "resolve_model", "build_user_model", "load_initial_weights", "import_factory",
           "TORCHVISION_TAPS", "ResNet18CIFAR", "ResNet18ImageNet", "MLPTaskLearner", "build_task_learner",
           "TASK_ARCHS"]

TASK_ARCHS = ("auto", "resnet18-cifar", "resnet18-imagenet", "mlp", "drn-d-22", "drn-d-small")
"""Built-in task learners; the "drn-*" ones are segmentation networks (:mod:`tavaal.models.drn`)."""
TASKS = ("classification", "segmentation")


class _ResNet18(nn.Module):
    """Shared body of the two ResNet-18 variants; they differ in the stem (conv-BN-ReLU with
    ``stem_kernel`` and ``stem_stride``, then a 3x3 stride-2 max-pool if ``stem_pool``)."""

    def __init__(self, num_classes: int, in_channels: int, width: int, dropout: float, *,
                 stem_kernel: int, stem_stride: int, stem_pool: bool):
        super().__init__()
        check_sizes(dropout, num_classes=num_classes, in_channels=in_channels, width=width)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.width = int(width)
        widths = [self.width * m for m in (1, 2, 4, 8)]
        self.stage_channels: List[int] = list(widths)
        self.feature_dim = widths[-1]
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))
            for in_planes, planes, stride in zip([self.width] + widths[:-1], widths, (1, 2, 2, 2)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=float(dropout))
        self.linear = nn.Linear(self.feature_dim, self.num_classes)
        # built last: the checkpoint layout has the stem after the classifier
        stem = [nn.Conv2d(self.in_channels, self.width, stem_kernel, stride=stem_stride, padding=stem_kernel // 2,
                          bias=False), nn.BatchNorm2d(self.width), nn.ReLU(inplace=True)]
        if stem_pool:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x (B, C, H, W) -> (logits (B, K), feature (B, 8*width), [4 stage maps])."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet-18 expects (B, {self.in_channels}, H, W) input, got shape {list(x.shape)}")
        out = self.stem(x)
        out1 = self.layer1(out)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        feature = torch.flatten(self.pool(out4), 1)
        logits = self.linear(self.dropout(feature))
        return logits, feature, [out1, out2, out3, out4]


class ResNet18CIFAR(_ResNet18):
    """ResNet-18 for small images (the kuangliu/"pytorch-cifar" variant used by TA-VAAL).

    3x3 stride-1 stem (conv-BN-ReLU, no max-pool); four stages of two BasicBlocks with widths
    ``width * (1, 2, 4, 8)`` and strides 1, 2, 2, 2; adaptive global average pool (the
    official code's ``avg_pool2d(out, 4)`` only fits 32 px); optional dropout; Linear.
    For a 32x32 input the stage maps are 32, 16, 8 and 4 pixels wide. Works for any input
    of at least 8 px and any channel count (1 for MNIST-like and digits data).

    Args:
        num_classes: K.
        in_channels: image channels.
        width: channels of the first stage (64 in the paper; smaller for CPU runs).
        dropout: probability of the dropout applied to ``feature`` before the classifier.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, dropout: float = 0.0):
        super().__init__(num_classes, in_channels, width, dropout, stem_kernel=3, stem_stride=1, stem_pool=False)


class ResNet18ImageNet(_ResNet18):
    """ResNet-18 with the ImageNet stem (7x7 stride-2 conv-BN-ReLU + 3x3 stride-2 max-pool).

    Same stages, pooling, dropout and classifier as :class:`ResNet18CIFAR`; meant for images of
    64 px and more (224 px: stage maps 56, 28, 14, 7). Smaller inputs still run but lose
    resolution quickly.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, dropout: float = 0.0):
        super().__init__(num_classes, in_channels, width, dropout, stem_kernel=7, stem_stride=2, stem_pool=True)


class MLPTaskLearner(nn.Module):
    """The paper's toy task learner (§4.1): a 3-layer MLP with ReLU.

    With the default ``hidden=(64, 64)`` the layers are
    ``Linear(D, 64) -> ReLU -> Linear(64, 64) -> ReLU -> [dropout] -> Linear(64, K)``.
    ``feature`` is the last hidden activation. The paper attaches the Ranker ("a single layer
    perceptron") to the *mid layer* of the task learner: ``stages`` holds one tensor, the
    activation after hidden layer ``len(hidden) // 2`` (0-based; the 2nd of 3 Linear layers for
    the default). Inputs with more than one non-batch dimension are flattened.

    Args:
        in_features: D (product of the input shape for non-vector inputs).
        num_classes: K.
        hidden: widths of the hidden layers (``len(hidden) + 1`` Linear layers in all).
        dropout: probability of the dropout applied to ``feature`` before the classifier.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (64, 64), dropout: float = 0.0):
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden:
            raise ValueError("hidden must name at least one hidden layer")
        check_sizes(dropout, in_features=in_features, num_classes=num_classes,
                    **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.ranker_layer = len(hidden) // 2
        dims = [self.in_features] + hidden
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(p=float(dropout))
        self.linear = nn.Linear(hidden[-1], self.num_classes)
        self.stage_channels: List[int] = [hidden[self.ranker_layer]]
        self.feature_dim = hidden[-1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x (B, D) (or (B, ...) flattened to D) -> (logits (B, K), feature (B, h_last), [mid (B, h_mid)])."""
        if x.dim() > 2:
            x = torch.flatten(x, 1)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"MLPTaskLearner expects (B, {self.in_features}) input, got shape {list(x.shape)}")
        h = x
        stages: List[torch.Tensor] = []
        for i, layer in enumerate(self.hidden_layers):
            h = F.relu(layer(h))
            if i == self.ranker_layer:
                stages.append(h)
        logits = self.linear(self.dropout(h))
        return logits, h, stages


def build_task_learner(input_shape: Sequence[int], num_classes: int, arch: str = "auto", width: int = 64,
                       dropout: float = 0.0, task: str = "classification") -> nn.Module:
    """Task learner for inputs of shape ``input_shape`` ((C, H, W) images or (D,) vectors).

    ``arch``: "auto" (MLP for vectors, "resnet18-cifar" for images smaller than 64 px on their
    shorter side, "resnet18-imagenet" otherwise), or one of "resnet18-cifar",
    "resnet18-imagenet", "mlp". ``width`` is the first-stage width of the ResNets, and the
    width of both hidden layers of the MLP (``hidden=(width, width)``). An MLP on an image
    flattens it.

    ``task="segmentation"`` (per-pixel labels): "auto" means "drn-d-22"; the task learner
    must be a DRN ("drn-d-22", or "drn-d-small" for CPU runs), whose ``width`` is its first
    residual level's (64 = the paper's DRN-D-22). Raises ValueError for a classifier arch on a
    segmentation task and vice versa.
    """
    shape = tuple(int(s) for s in input_shape)
    if arch not in TASK_ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {TASK_ARCHS}")
    if len(shape) not in (1, 3) or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) or (D,) with positive sizes, got {shape}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "segmentation":
        arch = "drn-d-22" if arch == "auto" else arch
        if not arch.startswith("drn-") or len(shape) != 3:
            raise ValueError(f"segmentation needs a dense task learner on images: arch 'drn-d-22' or 'drn-d-small' "
                             f"(got arch {arch!r}, input_shape {shape})")
        return build_drn(arch, num_classes, in_channels=shape[0], width=width, dropout=dropout)
    if arch.startswith("drn-"):
        raise ValueError(f"arch {arch!r} is a segmentation network; this data set has one label per sample "
                         "(use auto, resnet18-cifar, resnet18-imagenet or mlp)")
    if arch == "auto":
        arch = "mlp" if len(shape) == 1 else "resnet18-cifar" if min(shape[1:]) < 64 else "resnet18-imagenet"
    if arch == "mlp":
        return MLPTaskLearner(math.prod(shape), num_classes, hidden=(width, width), dropout=dropout)
    if len(shape) != 3:
        raise ValueError(f"arch {arch!r} needs image inputs (C, H, W), got input_shape {shape}")
    cls = ResNet18CIFAR if arch == "resnet18-cifar" else ResNet18ImageNet
    return cls(num_classes, in_channels=shape[0], width=width, dropout=dropout)


# ---------------------------------------------------------------------------- user models
class TappedClassifier(nn.Module):
    """Any classifier ``module`` (x -> logits (B, K)) as a task learner: ``forward(x) ->
    (logits, feature, stages)`` through forward hooks.

    Args:
        module: the classifier (a torchvision ResNet, a fine-tuned backbone, ...). If it returns
            a tuple or list, its first element is taken as the logits.
        input_shape: one sample's shape, e.g. (3, 224, 224); used once to probe the sizes.
        taps: names (as in ``module.named_modules()``) of the submodules whose outputs the
            Ranker reads (``stages``), in order; at least one.
        feature_layer: name of the submodule whose output, flattened to (B, F), is ``feature``
            (what core-set and BADGE use); None: the input of the last ``nn.Linear``.
        output_key: for a module whose forward returns a dict, the key of the logits.

    Attributes ``stage_channels`` (dim 1 of each tapped output), ``feature_dim`` and
    ``num_classes`` are probed with one forward pass of a zero batch in eval mode.
    The state dict is the wrapped module's, under ``module.``.

    Raises ValueError naming the available submodules when a tap or the feature layer does
    not exist, when the probe gives outputs of an unusable shape, and when a dict output has no
    ``output_key`` (naming its keys) or not that key.
    """

    def __init__(self, module: nn.Module, input_shape: Sequence[int], taps: Sequence[str],
                 feature_layer: str | None = None, output_key: str | None = None):
        super().__init__()
        taps = [str(t) for t in taps]
        if not taps:
            raise ValueError("a user task model needs at least one tapped submodule for the Ranker")
        named = dict(module.named_modules())
        missing = [t for t in taps + ([feature_layer] if feature_layer else []) if t not in named or t == ""]
        if missing:
            names = [n for n in named if n]
            raise ValueError(f"no submodule named {', '.join(repr(m) for m in missing)} in "
                             f"{type(module).__name__}; available: {', '.join(names[:40])}"
                             + (f" ... ({len(names)} in all)" if len(names) > 40 else ""))
        self.module = module
        self.taps = taps
        self.feature_layer = feature_layer
        self.output_key = output_key
        self.input_shape = tuple(int(s) for s in input_shape)
        self._captured: dict = {}
        for i, name in enumerate(taps):
            named[name].register_forward_hook(functools.partial(_store_output, self, i))
        if feature_layer is not None:
            named[feature_layer].register_forward_hook(functools.partial(_store_output, self, "feature"))
        else:
            linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(f"{type(module).__name__} has no nn.Linear layer: name the feature layer "
                                 "(feature_layer=...) whose output core-set uses")
            linears[-1].register_forward_pre_hook(functools.partial(_store_input, self, "feature"))
        self._probe()

    def _probe(self) -> None:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                logits, feature, stages = self(torch.zeros((2,) + self.input_shape))
        finally:
            self.train(was_training)
        if logits.dim() != 2:
            raise ValueError(f"the model must return logits of shape (B, K), got {list(logits.shape)}")
        bad = [self.taps[i] for i, s in enumerate(stages) if s.dim() < 2]
        if bad:
            raise ValueError(f"tapped submodule(s) {bad} give outputs without a channel dimension")
        self.num_classes = int(logits.shape[1])
        self.stage_channels: List[int] = [int(s.shape[1]) for s in stages]
        self.feature_dim = int(feature.shape[1])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """x -> (logits (B, K), feature (B, F), [tapped outputs])."""
        self._captured = {}
        try:
            logits = self.module(x)
            if isinstance(logits, dict):
                if self.output_key is None or self.output_key not in logits:
                    raise ValueError(f"the model's forward returns a dict with keys {sorted(logits)}: give the key "
                                     "of the logits (--output-key / output_key="
                                     + ("...)" if self.output_key is None else f"; {self.output_key!r} is not one)"))
                logits = logits[self.output_key]
            if isinstance(logits, (tuple, list)):
                logits = logits[0]
            stages = [self._captured[i] for i in range(len(self.taps))]
            feature = torch.flatten(self._captured["feature"], 1)
        except KeyError as exc:
            raise RuntimeError(f"the tapped submodule {exc.args[0]!r} did not run in the forward pass") from None
        finally:
            self._captured = {}
        return logits, feature, stages


def _store_output(owner: TappedClassifier, key, module, inputs, output) -> None:
    owner._captured[key] = output[0] if isinstance(output, (tuple, list)) else output


def _store_input(owner: TappedClassifier, key, module, inputs) -> None:
    owner._captured[key] = inputs[0]


# known defaults: family prefix -> (taps, feature layer)
TORCHVISION_TAPS = {family: (["layer1", "layer2", "layer3", "layer4"], "avgpool")
                    for family in ("resnet", "resnext", "wide_resnet")}


def import_factory(path: str) -> Callable[..., nn.Module]:
    """The callable named by ``"package.module:attribute"`` (ValueError with the reason otherwise)."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"a model factory is 'package.module:callable', got {path!r}")
    mod_name, attr = path.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise ValueError(f"cannot import {mod_name!r} for model {path!r}: {type(exc).__name__}: {exc}") from None
    obj = mod
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{mod_name!r} has no attribute {attr!r} (model {path!r})")
    if not callable(obj):
        raise ValueError(f"{path!r} is not callable")
    return obj


def resolve_model(name: str, num_classes: int | None = None, *, taps: Sequence[str] | None = None,
                  feature_layer: str | None = None, kwargs: dict | None = None,
                  weights: str | None = None) -> dict:
    """A user-model spec (JSON-serialisable, stored in checkpoints) from a name:

    * ``"torchvision:resnet50"`` (any torchvision.models builder): built with
      ``num_classes=num_classes`` and no pretrained download; default taps/feature layer for
      the ResNet family (``layer1..layer4`` / ``avgpool``), others need ``taps``;
    * ``"package.module:factory"``: any importable callable returning an ``nn.Module``;
      ``num_classes`` is passed when the factory takes it; ``kwargs`` are passed as given.

    Returns ``{"factory", "kwargs", "taps", "feature_layer", "weights"}``. Raises ValueError
    (unknown name, missing taps, torchvision not importable)."""
    kwargs = dict(kwargs or {})
    if name.startswith("torchvision:"):
        arch = name.split(":", 1)[1]
        factory = f"torchvision.models:{arch}"
        import_factory(factory)  # clear error when torchvision is missing
        if num_classes is not None:
            kwargs.setdefault("num_classes", int(num_classes))
        kwargs.setdefault("weights", None)
        family = next((prefix for prefix in TORCHVISION_TAPS if arch.startswith(prefix)), None)
        if taps is None and family is not None:
            taps, default_feature = TORCHVISION_TAPS[family]
            feature_layer = feature_layer or default_feature
    else:
        factory = name
        fn = import_factory(factory)
        if num_classes is not None and "num_classes" in _parameters(fn):
            kwargs.setdefault("num_classes", int(num_classes))
    if not taps:
        raise ValueError(f"model {name!r}: give the names of the submodules the Ranker taps (taps=[...] / --taps)")
    return {"factory": factory, "kwargs": kwargs, "taps": list(taps), "feature_layer": feature_layer,
            "weights": None if weights is None else str(weights)}


def _parameters(fn) -> set:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def build_user_model(spec: dict, input_shape: Sequence[int], *, load_weights: bool = True) -> TappedClassifier:
    """Rebuild a user task model from its spec (see :func:`resolve_model`): import and call the
    factory, wrap it in a :class:`TappedClassifier`, and (``load_weights``) load the spec's
    initial ``weights`` file."""
    try:
        module = import_factory(spec["factory"])(**dict(spec.get("kwargs") or {}))
    except KeyError as exc:
        raise ValueError(f"user model spec lacks {exc.args[0]!r}: {spec!r}") from None
    if not isinstance(module, nn.Module):
        raise ValueError(f"{spec['factory']} returned a {type(module).__name__}, not an nn.Module")
    if load_weights and spec.get("weights"):
        load_initial_weights(module, spec["weights"])
    return TappedClassifier(module, input_shape, spec["taps"], spec.get("feature_layer"), spec.get("output_key"))


def load_initial_weights(module: nn.Module, path) -> dict:
    """Load a state-dict file (``torch.save(model.state_dict())``; a dict holding ``state_dict``
    or ``model`` also works) into ``module``.

    Keys whose shapes differ from the module's (e.g. a 1000-class head on a 10-class model) are
    skipped and reported, as are unexpected and missing keys. Returns ``{"loaded": [...],
    "skipped": [...], "missing": [...], "unexpected": [...]}``. Raises ValueError if the file
    cannot be read or no key matches (wrong file).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot read the weights file {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model", "backbone"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    own = module.state_dict()
    loaded, skipped, unexpected = {}, [], []
    for k, v in state.items():
        if k.startswith("module.") and k not in own and k[7:] in own:
            k = k[7:]
        if k not in own:
            unexpected.append(k)
        elif isinstance(v, torch.Tensor) and tuple(v.shape) == tuple(own[k].shape):
            loaded[k] = v
        else:
            skipped.append(k)
    if not loaded:
        raise ValueError(f"{path}: none of its {len(state)} keys match the model's parameters "
                         f"(e.g. file {list(state)[:3]} vs model {list(own)[:3]})")
    module.load_state_dict(loaded, strict=False)
    report = {"loaded": sorted(loaded), "skipped": skipped, "missing": sorted(set(own) - set(loaded) - set(skipped)),
              "unexpected": sorted(unexpected)}
    if skipped or report["missing"]:
        log.warning("initial weights %s: loaded %d tensors; skipped %d with other shapes %s; %d left at their "
                    "initial values %s", path, len(loaded), len(skipped), skipped[:5], len(report["missing"]),
                    report["missing"][:5])
    return report
