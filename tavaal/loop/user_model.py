"""Your own task model in a work directory: the spec stored in ``workdir.json``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

from ..models import build_user_model, resolve_model
from .errors import LoopError

__all__ = ["user_model_spec"]


def user_model_spec(model, taps: Optional[Sequence[str]], feature_layer: Optional[str], weights: Optional[str],
                    num_classes: int, input_shape, output_key: Optional[str] = None) -> Optional[Dict]:
    """The user-model spec stored in workdir.json (None: the built-in learner of config.arch);
    the model is built once here so that one that cannot be imported, built or tapped fails at
    init. ``model``: a ``"package.module:factory"`` / ``"torchvision:NAME"`` name or a spec dict;
    ``output_key``: the key of the logits for a forward that returns a dict. Raises
    :class:`LoopError` naming the problem (a dict output without ``output_key`` included)."""
    if model is None:
        if taps or feature_layer or weights or output_key:
            raise LoopError("--taps / --feature-layer / --weights / --output-key need --model")
        return None
    try:
        if isinstance(model, dict):
            spec = dict(model)
        else:
            spec = resolve_model(str(model), num_classes, taps=taps, feature_layer=feature_layer,
                                 weights=None if weights is None else str(Path(weights).resolve()))
        if output_key is not None:
            spec["output_key"] = str(output_key)
        built = build_user_model(spec, tuple(input_shape))
    except RuntimeError as exc:  # e.g. a convolution that expects another channel count
        shape = "x".join(str(s) for s in input_shape)
        raise LoopError(f"cannot use the model {model!r} on the pool's samples ({shape}): {exc}"
                        + ("; --image-shape C,H,W decodes the images to the channels and size the model expects"
                           if len(input_shape) == 3 else "")) from None
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        raise LoopError(f"cannot use the model {model!r}: {exc}") from None
    if built.num_classes != num_classes:
        raise LoopError(f"the model {model!r} has {built.num_classes} outputs but the class list has {num_classes}")
    return spec
