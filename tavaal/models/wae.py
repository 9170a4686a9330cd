"""Rank-conditioned Wasserstein/variational auto-encoder of (TA-)VAAL.

The encoder never sees the rank r: it maps x to (mu, logvar) of q(z|x). The decoder sees
``cat([z, r], 1)`` with r (the *normalised* Ranker output, e.g. ``sigmoid(raw)``, chosen by the
caller) as the last column (TA-VAAL), or z alone (VAAL, ``rank_conditioned=False``).

Three variants, chosen by :func:`build_wae` / ``variant="auto"`` from ``input_shape``:

``"conv32"`` (images whose shorter side is < 64 px)
    The VAAL / TA-VAAL 32x32 network. Encoder: four ``Conv2d(k4, s2, p1, bias=False) -> BN ->
    ReLU`` with ``base_channels * (1, 2, 4, 8)`` channels (128-256-512-1024), 32 -> 2 px,
    flattened (1024*2*2 = 4096) -> ``fc_mu`` / ``fc_logvar``. Decoder: ``Linear(d(+1),
    1024*4*4)`` (no BN/activation, as the code) -> three ``ConvTranspose2d(k4, s2, p1,
    bias=False) -> BN -> ReLU`` (512-256-128), 4 -> 32 px -> ``ConvTranspose2d(k1)`` to C
    channels, linear output.
    *Other sizes* (8x8 digits, 28x28 MNIST, anything < 64 px): with ``input_fit="resize"``
    (default) the input is bilinearly resized to 32x32 before the encoder and the 32x32
    reconstruction bilinearly resized back to (H, W); both are no-ops at 32 px, so CIFAR gets
    exactly the official network. ``input_fit="pad"`` instead zero-pads inputs up to 32x32
    (centred) and centre-crops the reconstruction (only for H, W <= 32; exact inverse, no
    interpolation). Asking for ``variant="conv32"`` on >= 64 px images resizes them to 32x32,
    which is what the VAAL authors did for ImageNet (their issue #5).

``"conv64"`` (images of at least 64 px; e.g. 64, 224, 412)
    The 64x64 WAE of Tolstikhin et al. (WAE-pytorch) extended with more stride-2 stages, so
    large images are encoded at full resolution (never resized to 32). Encoder:
    ``n_down = max(4, floor(log2(min(H, W) / 4)))`` ``Conv(k4, s2, p1) -> BN -> ReLU`` stages
    with channels ``base_channels * 2**min(i, 3)`` (128-256-512-1024-1024-...), ending on a
    map of 4..7 px (64 px: 1024x4x4 = 16384 as WAE-pytorch; 224 px: 5 stages, 1024x7x7),
    flattened -> ``fc_mu`` / ``fc_logvar``. Decoder: ``Linear(d(+1), 1024 * h0 * w0)`` with
    ``h0 = ceil(H / 2**(n_down - 1))`` (64 px: 8x8 as WAE-pytorch; 224 px: 14x14), then
    ``n_down - 1`` ``ConvTranspose(k4, s2, p1) -> BN -> ReLU`` stages halving the channels
    (512, 256, 128, 64, ...), a ``ConvTranspose2d(k1)`` to C channels (linear output) and a
    centre crop to (H, W) when ``h0 * 2**(n_down-1)`` overshoots. Needs H, W >= 16.

*Downscaled input* (``canvas_size=(h, w)``, conv64 only): the network is built for an
    (h, w) canvas; inputs of another size are bilinearly resized to it before the encoder and
    the reconstruction is resized back to (H, W). Segmentation uses it to give the WAE whole
    Cityscapes frames at the paper's 412x412 (instead of 1024x2048).

``"mlp"`` (vectors (D,); paper §4.1 toy)
    Encoder ``Linear(D, h) -> ReLU`` then the two heads ``fc_mu``/``fc_logvar`` = Linear(h, d)
    (a 2-layer MLP); decoder ``Linear(d(+1), h) -> ReLU -> Linear(h, D)`` (2 layers, linear
    output). Images given to it are flattened and the reconstruction reshaped back.

Initialisation follows the official ``kaiming_init`` where it actually applies: every
``Conv2d`` and ``Linear`` inside the encoder/decoder bodies gets Kaiming-normal (fan-in, ReLU
gain) weights and zero bias, BatchNorm weight 1 / bias 0; the ``ConvTranspose2d`` layers and
the ``fc_mu``/``fc_logvar`` heads keep PyTorch's default init (the official code never reaches
them either). The MLP variant is initialised the same way.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .ranker import append_rank

__all__ = ["ConditionalWAE", "MeanEncoder", "build_wae", "WAE_VARIANTS"]

WAE_VARIANTS = ("auto", "conv32", "conv64", "mlp")
_CANVAS32 = 32


def _conv_down(cin: int, cout: int) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _conv_up(cin: int, cout: int) -> List[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConditionalWAE(nn.Module):
    """Rank-conditioned WAE/VAE (see the module docstring for the three architectures).

    Args:
        input_shape: (C, H, W) images or (D,) vectors.
        latent_dim: d (64 in the paper's Table 1 for CIFAR, 128 for Caltech/Cityscapes; the
            official code uses 32).
        rank_conditioned: True (TA-VAAL): the decoder's first layer takes d + 1 inputs and
            ``decode``/``forward`` need r. False (VAAL): the decoder takes z only and any r
            passed in is ignored (it may be None).
        variant: "auto" | "conv32" | "conv64" | "mlp" ("auto": mlp for vectors, conv32 for
            images whose shorter side is < 64 px, conv64 otherwise).
        base_channels: width of the first conv stage (128 in VAAL/TA-VAAL; e.g. 16-32 for CPU
            runs on small images). Stage i has ``base_channels * 2**min(i, 3)`` channels.
        hidden_dim: hidden width of the MLP variant.
        input_fit: how conv32 handles sizes other than 32x32: "resize" (bilinear) or "pad"
            (zero-pad / centre-crop, H, W <= 32 only).
        canvas_size: conv64 only: (h, w) (or one int) the encoder/decoder work at; inputs are
            resized to it and reconstructions back (None: the input's own size).

    Attributes: ``encoder`` (x -> flat features), ``fc_mu``, ``fc_logvar``, ``decoder``
    (z or cat[z, r] -> reconstruction before the final resize/crop), ``input_shape``,
    ``latent_dim``, ``rank_conditioned``, ``variant``.

    ``forward(x, r=None) -> (recon, z, mu, logvar)``: z is the sampled latent (B, d) *without*
    r (the official code returns z after appending r). In train mode z = mu + eps *
    exp(0.5 logvar), eps ~ N(0, I) from torch's global generator (so ``torch.manual_seed``
    makes it reproducible) or from ``generator`` if given; in eval mode z = mu (deterministic).
    For scoring use :meth:`encode_mean` (mu only) in eval mode -- the official code scores in
    train mode with BatchNorm batch statistics (bug B10); that is the caller's choice.
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int = 64, rank_conditioned: bool = True, *,
                 variant: str = "auto", base_channels: int = 128, hidden_dim: int = 128, input_fit: str = "resize",
                 canvas_size: Optional[Sequence[int] | int] = None):
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) not in (1, 3) or any(s < 1 for s in shape):
            raise ValueError(f"input_shape must be (C, H, W) or (D,) with positive sizes, got {shape}")
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        if variant not in WAE_VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {WAE_VARIANTS}")
        if input_fit not in ("resize", "pad"):
            raise ValueError(f"input_fit must be 'resize' or 'pad', got {input_fit!r}")
        if int(base_channels) < 1 or int(hidden_dim) < 1:
            raise ValueError(f"base_channels and hidden_dim must be positive, got {base_channels}, {hidden_dim}")
        if variant == "auto":
            variant = "mlp" if len(shape) == 1 else (
                "conv32" if min(shape[1:]) < 64 and canvas_size is None else "conv64")
        if canvas_size is not None and variant != "conv64":
            raise ValueError(f"canvas_size is for the conv64 variant (images), not {variant!r}")
        if variant != "mlp" and len(shape) != 3:
            raise ValueError(f"variant {variant!r} needs image inputs (C, H, W), got input_shape {shape}")
        self.input_shape: Tuple[int, ...] = shape
        self.latent_dim = int(latent_dim)
        self.rank_conditioned = bool(rank_conditioned)
        self.variant = variant
        self.base_channels = int(base_channels)
        self.hidden_dim = int(hidden_dim)
        self.input_fit = input_fit
        dec_in = self.latent_dim + (1 if self.rank_conditioned else 0)

        if variant == "mlp":
            d_in = math.prod(shape)
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d_in, self.hidden_dim), nn.ReLU(inplace=True))
            flat = self.hidden_dim
            self.decoder = nn.Sequential(nn.Linear(dec_in, self.hidden_dim), nn.ReLU(inplace=True),
                                         nn.Linear(self.hidden_dim, d_in))
            self._canvas: Tuple[int, int] = (0, 0)
        else:
            c, h, w = shape
            if variant == "conv32":
                if input_fit == "pad" and (h > _CANVAS32 or w > _CANVAS32):
                    raise ValueError(f"input_fit='pad' needs H, W <= 32, got {h}x{w}; use input_fit='resize'")
                canvas = (_CANVAS32, _CANVAS32)
                n_down = 4
            else:
                if canvas_size is not None:
                    cs = (int(canvas_size),) * 2 if isinstance(canvas_size, int) else tuple(int(v) for v in canvas_size)
                    if len(cs) != 2:
                        raise ValueError(f"canvas_size must be an int or (h, w), got {canvas_size}")
                    h, w = cs
                if min(h, w) < 16:
                    raise ValueError(f"variant 'conv64' needs H, W >= 16 (input or canvas_size), got {h}x{w}; "
                                     "use 'conv32'")
                canvas = (h, w)
                n_down = max(4, int(math.floor(math.log2(min(h, w) / 4))))
            self._canvas = canvas
            enc_ch = [self.base_channels * 2 ** min(i, 3) for i in range(n_down)]
            layers: List[nn.Module] = []
            for cin, cout in zip([c] + enc_ch[:-1], enc_ch):
                layers += _conv_down(cin, cout)
            self.encoder = nn.Sequential(*layers, nn.Flatten())
            flat = enc_ch[-1] * (canvas[0] // 2 ** n_down) * (canvas[1] // 2 ** n_down)  # k4 s2 p1: floor(n / 2)
            scale = 2 ** (n_down - 1)
            h0, w0 = -(-canvas[0] // scale), -(-canvas[1] // scale)
            top = enc_ch[-1]
            dec_ch = [top] + [max(top // 2 ** j, 8) for j in range(1, n_down)]
            dec: List[nn.Module] = [nn.Linear(dec_in, top * h0 * w0), nn.Unflatten(1, (top, h0, w0))]
            for cin, cout in zip(dec_ch[:-1], dec_ch[1:]):
                dec += _conv_up(cin, cout)
            self.decoder = nn.Sequential(*dec, nn.ConvTranspose2d(dec_ch[-1], c, 1))
            self._decoded_hw = (h0 * scale, w0 * scale)
        self.fc_mu = nn.Linear(flat, self.latent_dim)
        self.fc_logvar = nn.Linear(flat, self.latent_dim)
        self._init_weights()

    # ----------------------------------------------------------------- init
    def _init_weights(self) -> None:
        for body in (self.encoder, self.decoder):
            for m in body.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    # ------------------------------------------------------------- helpers
    def _check_input(self, x: torch.Tensor) -> None:
        # while tracing the shapes are fixed by the example input: no check (no TracerWarnings)
        if not torch.jit.is_tracing() and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"ConditionalWAE built for inputs of shape (B, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")

    def _to_canvas(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "mlp":
            return x
        h, w = self.input_shape[1], self.input_shape[2]
        if (h, w) == self._canvas:
            return x
        if self.input_fit == "resize" or self.variant == "conv64":
            return F.interpolate(x, size=self._canvas, mode="bilinear", align_corners=False)
        top, left = (self._canvas[0] - h) // 2, (self._canvas[1] - w) // 2
        return F.pad(x, (left, self._canvas[1] - w - left, top, self._canvas[0] - h - top))

    def _from_canvas(self, y: torch.Tensor) -> torch.Tensor:
        if self.variant == "mlp":
            return y.view((-1,) + self.input_shape)
        h, w = self.input_shape[1], self.input_shape[2]
        dh, dw = self._decoded_hw
        if (dh, dw) == (h, w):
            return y
        if self.variant == "conv32" and self.input_fit == "resize":
            return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        if self.variant == "conv64" and self._canvas != (h, w):
            ch, cw = self._canvas
            top, left = (dh - ch) // 2, (dw - cw) // 2
            y = y[:, :, top:top + ch, left:left + cw]
            return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        top, left = (dh - h) // 2, (dw - w) // 2
        return y[:, :, top:top + h, left:left + w]

    # ----------------------------------------------------------------- API
    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x (B, *input_shape) -> (mu (B, d), logvar (B, d)). Never sees r."""
        self._check_input(x)
        h = self.encoder(self._to_canvas(x))
        return self.fc_mu(h), self.fc_logvar(h)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean mu (B, d): what the discriminator scores. Use in eval mode for scoring."""
        return self.encode(x)[0]

    def mean_encoder(self) -> "MeanEncoder":
        """A module ``x -> mu`` sharing this WAE's parameters (for TorchScript/ONNX export)."""
        return MeanEncoder(self)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z = mu + eps * exp(0.5 * logvar) in train mode (eps ~ N(0, I)); z = mu in eval mode."""
        if not self.training:
            return mu
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(std.shape, generator=generator, device=std.device, dtype=std.dtype)
        return mu + eps * std

    def decoder_input(self, z: torch.Tensor, r: Optional[torch.Tensor]) -> torch.Tensor:
        """``cat([z, r], 1)`` (r last) if rank-conditioned, else z (r ignored)."""
        return append_rank(z, r, self.rank_conditioned, self.latent_dim, "z",
                           "this WAE is rank-conditioned (TA-VAAL): pass the normalised rank r")

    def decode(self, z: torch.Tensor, r: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z (B, d), r (B,) or (B, 1) normalised rank (ignored when not rank-conditioned)
        -> reconstruction (B, *input_shape), linear output."""
        return self._from_canvas(self.decoder(self.decoder_input(z, r)))

    def forward(self, x: torch.Tensor, r: Optional[torch.Tensor] = None, *, generator: Optional[torch.Generator] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, *input_shape), r (B,) -> (recon (B, *input_shape), z (B, d), mu (B, d), logvar (B, d))."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode(z, r), z, mu, logvar


class MeanEncoder(nn.Module):
    """``x -> mu`` view of a :class:`ConditionalWAE` (shares its parameters); export-friendly.

    Starts in the WAE's current train/eval mode (``.train()``/``.eval()`` on it switch both).
    """

    def __init__(self, wae: ConditionalWAE):
        super().__init__()
        self.wae = wae
        self.train(wae.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wae.encode_mean(x)


def build_wae(input_shape: Sequence[int], latent_dim: int = 64, rank_conditioned: bool = True, **kw) -> ConditionalWAE:
    """:class:`ConditionalWAE` for ``input_shape`` (variant "auto" unless ``variant=`` is among the
    keyword arguments, which go to the class)."""
    return ConditionalWAE(input_shape, latent_dim, rank_conditioned, **kw)
