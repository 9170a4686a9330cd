"""Oracles of the ops' specifications, shared by the CPU tests (tests/test_ops_*.py) and the GPU
tests (tests/gpu/): float64 simulations of the plain greedy k-center and of the discriminator.
Needs only numpy and torch (the GPU machine may lack hypothesis)."""
import numpy as np
import torch

from tavaal.models import Discriminator

RTOL = 1e-4  # fp32 distance accumulation vs float64


def brute_greedy(x64, b, centers, first=0):
    """Independent float64 plain greedy (argmax ties -> lowest index)."""
    n = x64.shape[0]
    is_c = np.zeros(n, bool)
    mind = np.full(n, np.inf)
    picks = []
    todo = list(centers) if len(centers) else [first]
    for c in todo:
        mind = np.minimum(mind, ((x64 - x64[c]) ** 2).sum(1))
        is_c[c] = True
    if not len(centers):
        picks.append(first)
    while len(picks) < b:
        m = np.where(is_c, -1.0, mind)
        p = int(np.argmax(m))
        picks.append(p)
        is_c[p] = True
        mind = np.minimum(mind, ((x64 - x64[p]) ** 2).sum(1))
    return picks


def check_greedy(features, picks, radii, centers, first=0, exact=False, metric="euclidean"):
    """Simulate the greedy in float64 along `picks` and check every step (see module doc)."""
    x = features.to(torch.float64)
    if metric == "cosine":
        f32 = features.to(torch.float32)
        x = (f32 / torch.linalg.vector_norm(f32, dim=1, keepdim=True)).to(torch.float64)
    x = x.numpy()
    n = x.shape[0]
    picks = [int(p) for p in picks]
    assert len(set(picks)) == len(picks), "a point was picked twice"
    centers = [int(c) for c in centers]
    assert not set(picks) & set(centers), "an initial center was picked"
    is_c = np.zeros(n, bool)
    mind = np.full(n, np.inf)

    def add(c):
        nonlocal mind
        mind = np.minimum(mind, ((x - x[c]) ** 2).sum(1))
        is_c[c] = True

    def check_radius(k):
        rest = mind[~is_c]
        want = 0.0 if rest.size == 0 else (rest.max() / 2 if metric == "cosine" else np.sqrt(rest.max()))
        np.testing.assert_allclose(float(radii[k]), want, rtol=RTOL, atol=1e-6, err_msg=f"radius after pick {k}")

    if centers:
        for c in centers:
            add(c)
        offset = 0
    else:
        assert picks[0] == first, "with no initial center, `first` is the first pick"
        add(first)
        check_radius(0)
        offset = 1
    for k in range(offset, len(picks)):
        p = picks[k]
        m = np.where(is_c, -1.0, mind)
        best = m.max()
        assert m[p] >= best * (1 - RTOL) - 1e-9, f"pick {k}: {p} has {m[p]} < max {best}"
        if exact:
            assert p == int(np.argmax(m)), f"pick {k}: {p} but the exact greedy picks {int(np.argmax(m))}"
        else:
            top = np.flatnonzero(m >= best * (1 - RTOL) - 1e-9)
            if len(top) == 1:
                assert p == top[0], f"pick {k}: {p}, but {top[0]} is the unique argmax"
        add(p)
        check_radius(k)


def eager64(D, r, mu):
    with torch.no_grad():
        d64 = Discriminator(D.latent_dim, D.hidden_dim, D.num_layers, D.rank_conditioned).double()
        d64.load_state_dict(D.state_dict())
        return d64(None if r is None else r.double(), mu.double())


def check_selection(D, r, mu, b, values, indices, largest=False, atol=2e-6):
    p = eager64(D, r, mu)
    assert indices.dtype == torch.int64 and values.dtype == torch.float32
    assert len(set(indices.tolist())) == b
    np.testing.assert_allclose(values.double().numpy(), p[indices].numpy(), rtol=0, atol=atol)
    key = -p if largest else p
    order = np.lexsort((np.arange(len(p)), key.numpy()))
    kth = key[order[b - 1]]
    # every pick is among the b best within tolerance; the order is by (value, index)
    assert torch.all(key[indices] <= kth + atol)
    v = -values if largest else values
    assert torch.all(v[1:] >= v[:-1])
    # exact selection when the float64 scores are well separated around the cut
    sorted_key = key[order]
    if b < len(p) and float(sorted_key[b] - sorted_key[b - 1]) > 4 * atol:
        assert set(indices.tolist()) == set(order[:b].tolist())
