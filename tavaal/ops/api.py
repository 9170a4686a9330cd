"""Public Python API of the selection ops: input validation + dispatch.

Each op validates its inputs with an actionable message -- ``TypeError`` for wrong
dtypes/types, ``ValueError`` for wrong shapes, devices, values (``b`` out of range, NaN/inf,
non-contiguous tensors), as the C++ ops do -- then runs ``torch.ops.tavaal.*`` when the
compiled ops are loaded (:mod:`tavaal.ops.build`) and serve the tensors' device, else the
pure-torch reference (:mod:`tavaal.ops.reference`). A missing extension gives ONE warning per
process (``TAVAAL_QUIET_FALLBACK=1`` silences it, ``TAVAAL_REQUIRE_EXT=1`` raises instead);
``TAVAAL_FORCE_REFERENCE=1`` forces the reference (read at every call).
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Optional, Tuple, Union

import torch

from . import reference

Tensor = torch.Tensor

__all__ = ["topb", "kcenter_greedy", "score_topb", "backend", "extension_error", "extension_origin"]

_lock = threading.Lock()
_state = {"loaded": None, "error": None, "origin": None, "warned": False}
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _load() -> bool:
    """Load the compiled ops once (``tavaal._C``, else a cached JIT build; see
    :mod:`tavaal.ops.build`); True when ``torch.ops.tavaal.*`` is registered."""
    if _state["loaded"] is None:
        with _lock:
            if _state["loaded"] is None:
                from . import build  # (lazily: importing tavaal.ops stays cheap until an op runs)

                loaded, error, origin = build.load()
                _state["error"], _state["origin"] = error, origin
                _state["loaded"] = loaded
    return bool(_state["loaded"])


def _forced_reference() -> bool:
    return os.environ.get("TAVAAL_FORCE_REFERENCE", "0") not in ("", "0", "false", "False")


def extension_error() -> Optional[str]:
    """Why the compiled ops could not be loaded (None when they loaded)."""
    _load()
    return _state["error"]


def extension_origin() -> Optional[str]:
    """Where the compiled ops come from: ``"tavaal._C"`` (built at install time), the path
    of the JIT-built library (:mod:`tavaal.ops.build`), or None (not loaded)."""
    _load()
    return _state["origin"]


def _cuda_built() -> bool:
    return _load() and bool(torch.ops.tavaal.with_cuda())


def backend() -> str:
    """``"cpp+cuda"``, ``"cpp"`` (extension built without CUDA) or ``"reference"``."""
    if _forced_reference() or not _load():
        return "reference"
    return "cpp+cuda" if _cuda_built() else "cpp"


def use_extension(device: torch.device) -> bool:
    """Whether the extension serves tensors on ``device`` (warns once when it is missing)."""
    if _forced_reference():
        return False
    if not _load():
        if os.environ.get("TAVAAL_REQUIRE_EXT", "0") not in ("", "0"):
            raise RuntimeError(f"the compiled tavaal ops are required (TAVAAL_REQUIRE_EXT=1) but unavailable: "
                               f"{_state['error']}")
        if not _state["warned"] and os.environ.get("TAVAAL_QUIET_FALLBACK", "0") in ("", "0"):
            _state["warned"] = True
            warnings.warn("the compiled tavaal ops (tavaal._C / the JIT build of tavaal.ops.build) are not "
                          f"available ({_state['error']}); using the slow pure-torch reference. "
                          "`python -m tavaal.ops.build` retries the build and says why it fails.",
                          RuntimeWarning, stacklevel=3)
        return False
    return device.type == "cpu" or (device.type == "cuda" and _cuda_built())


# ------------------------------------------------------------------------------ validation
def check_tensor(name: str, t, ndim: int, dtypes=_FLOATS, rows_only: bool = False) -> None:
    """TypeError/ValueError unless ``t`` is an ``ndim``-D tensor of one of ``dtypes``,
    contiguous (``rows_only``: each row contiguous, e.g. a column slice of a wider matrix)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must have dtype in ({names}), got {t.dtype}; convert it with .to(...)")
    if rows_only and not ((t.shape[1] <= 1 or t.stride(1) == 1) and t.stride(0) >= 0):
        raise ValueError(f"the rows of {name} must be contiguous (got strides {t.stride()}); pass {name}.contiguous()")
    if not rows_only and not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (got strides {t.stride()}); pass {name}.contiguous()")


def check_choice(name: str, value, choices: Tuple[str, str]) -> None:
    """ValueError ``"<name> must be 'a' or 'b', got ..."`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be {' or '.join(map(repr, choices))}, got {value!r}")


def check_b(b: int, n: int, what: str) -> None:
    """ValueError unless ``1 <= b <= n``; ``what`` says what ``n`` counts."""
    if b < 1 or b > n:
        raise ValueError(f"b must be in [1, {n}] ({what}), got {b}")


def check_int(name: str, v) -> int:
    """``v`` as an int (a Python int, or a one-element integer tensor); TypeError otherwise."""
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype.is_floating_point:
            return int(v)
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    return int(v)


def check_same_device(name: str, t: Tensor, ref_name: str, ref: Tensor) -> None:
    """ValueError naming both tensors when ``t`` is not on ``ref``'s device."""
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}; move it with .to({ref_name}.device)")


def _selector(name: str, sel: Tensor, n: int, ref: Tensor, ref_name: str) -> Tensor:
    """Validate a 1-D bool mask of length ``n`` or an integer index tensor with values in
    [0, n); return the mask as is or the indices as int64 (both on ``ref``'s device)."""
    if not isinstance(sel, torch.Tensor):
        raise TypeError(f"{name} must be a bool mask or an integer index tensor, got {type(sel).__name__}")
    check_same_device(name, sel, ref_name, ref)
    if sel.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(sel.shape)}")
    if sel.dtype == torch.bool:
        if sel.shape[0] != n:
            raise ValueError(f"{name} as a bool mask must have length {n} (one entry per row of {ref_name}), "
                             f"got {sel.shape[0]}")
        return sel
    if sel.dtype.is_floating_point or sel.dtype.is_complex:
        raise TypeError(f"{name} must be bool or an integer index tensor, got {sel.dtype}")
    idx = sel.to(torch.long)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"{name} indices must lie in [0, {n}), got range [{int(idx.min())}, {int(idx.max())}]")
    return idx


# ------------------------------------------------------------------------------------ topb
def topb(scores: Tensor, b: int, largest: bool = False, mask: Optional[Tensor] = None,
         nan_policy: str = "raise") -> Tuple[Tensor, Tensor]:
    """The ``b`` smallest (or ``largest``) scores and their indices, ordered by (value, index).

    Args:
        scores: 1-D floating tensor (N,), contiguous.
        b: how many to return, 1 <= b <= number of candidates.
        largest: select the largest instead of the smallest.
        mask: optional candidates: a bool mask (N,) or an integer tensor of indices
            (duplicates merged); returned indices are into ``scores``, not into the subset.
        nan_policy: ``"raise"`` (default: ValueError with the NaN count) or ``"worst"``
            (NaNs rank after every number, after +inf when smallest / -inf when largest).

    Returns:
        ``(values, indices)``: ``values`` of ``scores.dtype``, ``indices`` int64, both (b,).
    """
    check_tensor("scores", scores, 1)
    b = check_int("b", b)
    check_choice("nan_policy", nan_policy, ("raise", "worst"))
    n = scores.shape[0]
    cand = None if mask is None else _selector("mask", mask, n, scores, "scores").contiguous()
    check_b(b, n, "the number of scores")
    if cand is not None and cand.dtype == torch.bool:
        m = int(cand.sum())
        if b > m:
            raise ValueError(f"b={b} exceeds the number of candidates in mask ({m})")
    nan_worst = nan_policy == "worst"
    if use_extension(scores.device):
        return torch.ops.tavaal.topb(scores, b, bool(largest), cand, nan_worst)
    return reference.topb(scores, b, largest=bool(largest), mask=cand, nan_worst=nan_worst)


# ---------------------------------------------------------------------------------- kcenter
def kcenter_greedy(features: Tensor, b: int, centers: Optional[Tensor] = None, first: Optional[int] = None,
                   metric: str = "euclidean") -> Tuple[Tensor, Tensor]:
    """Exact greedy k-center (core-set, Sener & Savarese 2018) without an N x L matrix.

    Args:
        features: (N, D) fp32, fp16 or bf16, contiguous, finite. Distances are computed from
            the stored values upcast to fp32, accumulated in fp32.
        b: number of picks, 1 <= b <= N - #centers.
        centers: initial centers (the labeled samples): bool mask (N,) or integer indices;
            None/empty means none.
        first: with no initial center, the first pick (default 0), returned as ``indices[0]``.
            Must be None when there are initial centers.
        metric: ``"euclidean"`` or ``"cosine"`` (``1 - cos``, on fp32-normalised rows; every
            row must be non-zero).

    Returns:
        ``(indices, radii)``: the picks in order (int64, (b,)) -- each the non-center point
        farthest from the centers chosen so far, ties to the lower index -- and the covering
        radius ``max_i min_c d(i, c)`` over the remaining non-center points after each pick
        (fp32, (b,); Euclidean distance, not squared; 0 when no point remains).
    """
    check_tensor("features", features, 2, (torch.float32, torch.float16, torch.bfloat16))
    b = check_int("b", b)
    check_choice("metric", metric, ("euclidean", "cosine"))
    n = features.shape[0]
    if n == 0 or features.shape[1] == 0:
        raise ValueError(f"features must be non-empty, got shape {tuple(features.shape)}")
    if centers is None:
        cidx = torch.empty(0, dtype=torch.long, device=features.device)
    else:
        sel = _selector("centers", centers, n, features, "features")
        cidx = torch.nonzero(sel, as_tuple=False).flatten() if sel.dtype == torch.bool else torch.unique(sel)
    if cidx.numel():
        if first is not None:
            raise ValueError("first is only used when there are no initial centers; pass first=None")
        first_i = 0
    else:
        first_i = 0 if first is None else check_int("first", first)
        if not 0 <= first_i < n:
            raise ValueError(f"first must lie in [0, {n}), got {first_i}")
    check_b(b, n - cidx.numel(), f"N={n} minus {cidx.numel()} initial centers")
    if use_extension(features.device):
        return torch.ops.tavaal.kcenter_greedy(features, b, cidx, first_i, metric)
    if not bool(torch.isfinite(features).all()):
        bad = int((~torch.isfinite(features)).any(dim=1).sum())
        raise ValueError(f"features contain NaN or inf in {bad} row(s); k-center needs finite features")
    if metric == "cosine" and bool((features.to(torch.float32).norm(dim=1) == 0).any()):
        raise ValueError("cosine metric: features contain all-zero rows (cosine undefined)")
    return reference.kcenter_greedy(features, b, cidx, first_i, metric)


# ------------------------------------------------------------------------------- score_topb
def _discriminator_params(discriminator, device: torch.device):
    layers = getattr(discriminator, "layers", None)
    if layers is None or len(layers) < 1 or not all(isinstance(m, torch.nn.Linear) for m in layers):
        raise TypeError("discriminator must have .layers: an nn.ModuleList of nn.Linear (tavaal.models.Discriminator)")
    if layers[-1].out_features != 1:
        raise ValueError(f"the discriminator's last layer must have 1 output, got {layers[-1].out_features}")
    def f32(t: Tensor) -> Tensor:
        return t.detach().to(device=device, dtype=torch.float32).contiguous()

    ws = [f32(m.weight) for m in layers]
    bs = [f32(m.bias if m.bias is not None else torch.zeros(m.out_features)) for m in layers]
    return ws, bs, bool(getattr(discriminator, "rank_conditioned", False))


def score_topb(mu: Tensor, r: Optional[Tensor], discriminator: torch.nn.Module, b: int, largest: bool = False,
               precision: str = "fp32", return_scores: bool = False,
               chunk_size: int = 0) -> Union[Tuple[Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]:
    """Fused discriminator scoring + top-b: the same selection as ``topb(D(r, mu), b)``.

    Runs the discriminator MLP (``layers`` with ReLU between, sigmoid at the end) over ``mu``
    in chunks and keeps only the running top-b: no N x hidden intermediate and (on CPU) no
    N-sized score buffer unless ``return_scores``.

    Args:
        mu: (N, d) latents (any float dtype, converted to fp32), contiguous.
        r: (N,) or (N, 1) ranks, any stride; ignored (may be None) when the discriminator
            is not rank-conditioned.
        discriminator: a :class:`tavaal.models.Discriminator` (its weights are read out).
        b: 1 <= b <= N.
        largest: select the highest probabilities instead of the lowest.
        precision: ``"fp32"`` or ``"bf16"`` (bf16 matmuls with fp32 accumulation, bf16
            activations, fp32 sigmoid).
        return_scores: also return all N probabilities (fp32).
        chunk_size: rows per chunk (0: automatic).

    Returns:
        ``(values, indices)`` -- sigmoid probabilities (fp32) and int64 indices ordered by
        (value, index) -- plus ``scores`` when ``return_scores``.
    """
    check_tensor("mu", mu, 2)
    b = check_int("b", b)
    check_choice("precision", precision, ("fp32", "bf16"))
    chunk_size = check_int("chunk_size", chunk_size)
    if chunk_size < 0:
        raise ValueError(f"chunk_size must be >= 0, got {chunk_size}")
    n = mu.shape[0]
    ws, bs, rank_cond = _discriminator_params(discriminator, mu.device)
    in_dim = ws[0].shape[1]
    if mu.shape[1] + (1 if rank_cond else 0) != in_dim:
        raise ValueError(f"mu has {mu.shape[1]} columns but the discriminator expects "
                         f"{in_dim - (1 if rank_cond else 0)} (input {in_dim}{' incl. r' if rank_cond else ''})")
    if rank_cond:
        if r is None:
            raise ValueError("the discriminator is rank-conditioned (TA-VAAL): pass r")
        if not isinstance(r, torch.Tensor):
            raise TypeError(f"r must be a torch.Tensor, got {type(r).__name__}")
        check_same_device("r", r, "mu", mu)
        if r.dim() == 2 and r.shape[1] == 1:
            r = r.reshape(-1)
        if r.dim() != 1 or r.shape[0] != n:
            raise ValueError(f"r must be (N,) or (N, 1) with N={n}, got shape {tuple(r.shape)}")
        if r.dtype not in _FLOATS:
            raise TypeError(f"r must be floating, got {r.dtype}")
        r = r.to(torch.float32)  # any stride: r is read through views (N values, never copied by the ops)
    else:
        r = torch.empty(0, dtype=torch.float32, device=mu.device)
    check_b(b, n, "the number of latents")
    mu32 = mu.to(torch.float32)
    if use_extension(mu.device):
        v, i, s = torch.ops.tavaal.score_topb(mu32, r, ws, bs, b, bool(largest), precision, int(chunk_size), bool(return_scores))
    else:
        v, i, s = reference.score_topb(mu32, r, ws, bs, b, largest=bool(largest), precision=precision,
                                       chunk_size=chunk_size, return_scores=return_scores)
    return (v, i, s) if return_scores else (v, i)
