"""Auto-encoders as energies: the reconstruction error is the energy, and the bottleneck
(or the corruption the network must undo) limits the volume of low energy
(LeCun et al., "A Tutorial on Energy-Based Learning", 2006; LeCun's lectures on
regularised latent-variable EBMs).

    E(y, z) = ‖y − Dec(z)‖²,     F(y) ≈ E(y, Enc(y)) = ‖y − Dec(Enc(y))‖²

The encoder amortises the inference z* = argmin_z E(y, z); :func:`genoise.energy.infer_latent`
refines it by gradient descent from Enc(y). Three ways to train:

* :class:`AutoEncoder` — bottleneck: latent_dim < D (Hinton & Salakhutdinov 2006).
* :class:`DenoisingAutoEncoder` — reconstruct y from a corrupted ỹ, so the energy grows
  away from the data manifold (Vincent et al., ICML 2008).
* :class:`MaskedAutoEncoder` — hide random pixels or patches and score only their
  reconstruction (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2022),
  the masking form of denoising.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from genoise._checks import check_choice, check_finite, check_positive
from genoise.energy.base import Energy
from genoise.energy.functional import _check_beta
from genoise.nn import MLP


def _draw_device(generator: torch.Generator | None) -> torch.device:
    """Where to draw random numbers: on the generator's device (a CPU generator serves a
    model on any device, a CUDA generator draws on its GPU), on the CPU without one."""
    return generator.device if generator is not None else torch.device("cpu")


def flat_batch(owner: str, y: Tensor, in_dim: int) -> Tensor:
    """y (B, in_dim) or (B, ...) with prod(...) = in_dim → (B, in_dim); ValueError otherwise."""
    if y.ndim < 2 or y[0].numel() != in_dim:
        raise ValueError(f"{owner} expects y of shape (B, {in_dim}) or (B, ...) with {in_dim} values "
                         f"per sample, got {tuple(y.shape)}")
    return y.flatten(1)


class AutoEncoder(Energy):
    """Bottleneck auto-encoder, an :class:`Energy` with E(y, z) = ‖y − Dec(z)‖².

    Parameters
    ----------
    in_dim : int           values per sample (images are flattened: 784 for MNIST)
    latent_dim : int       width of the code z
    hidden : sequence of int
        Hidden widths of the MLP encoder (the decoder mirrors them).
    encoder, decoder : nn.Module, optional
        Custom networks (B, in_dim) → (B, latent_dim) and (B, latent_dim) → (B, in_dim).
    output : {"sigmoid", "linear"}
        Output non-linearity of the default decoder (sigmoid for images in [0, 1]).

    Examples
    --------
    >>> ae = AutoEncoder(64, 8, hidden=[32])
    >>> ae.energy(torch.rand(5, 64)).shape
    torch.Size([5])
    """

    has_latent = True

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None,
                 output: str = "sigmoid") -> None:
        super().__init__()
        check_choice("output", output, ("sigmoid", "linear"))
        self.in_dim, self.latent_dim = in_dim, latent_dim
        self.encoder = encoder if encoder is not None else MLP(in_dim, list(hidden), latent_dim)
        self.decoder = decoder if decoder is not None else MLP(latent_dim, list(hidden)[::-1], in_dim)
        self.output = output

    def encode(self, y: Tensor) -> Tensor:
        """z = Enc(y): (B, latent_dim)."""
        return self.encoder(flat_batch(type(self).__name__, y, self.in_dim))

    def decode(self, z: Tensor) -> Tensor:
        """Dec(z): (B, in_dim)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def reconstruct(self, y: Tensor) -> Tensor:
        """Dec(Enc(y)) in the shape of y."""
        return self.decode(self.encode(y)).reshape(y.shape)

    def energy(self, y: Tensor, x: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """E(y, z) = ‖y − Dec(z)‖² per sample, (B,); z = Enc(y) when None."""
        flat = flat_batch(type(self).__name__, y, self.in_dim)
        if z is None:
            z = self.encoder(flat)
        return ((flat - self.decode(z)) ** 2).sum(-1)

    def free_energy(self, y: Tensor, x: Tensor | None = None, beta: float = math.inf,
                    **kwargs: object) -> Tensor:
        """F_∞(y) ≈ E(y, Enc(y)) (the encoder's amortised minimum over z). The code has no
        density here, so only β = ∞ is defined."""
        if not math.isinf(_check_beta(beta)):
            raise ValueError(f"{type(self).__name__}.free_energy is defined for beta=inf only "
                             f"(deterministic code), got beta={beta}")
        return self.energy(y, x=x)

    def initial_latent(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            return self.encode(y)

    def corrupt(self, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """The training input ỹ and a per-value loss weight (None: every value counts)."""
        return y, None

    def loss(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training loss: mean over the batch of Σ w ⊙ (y − Dec(Enc(ỹ)))²."""
        flat = flat_batch(type(self).__name__, y, self.in_dim)
        corrupted, weight = self.corrupt(flat, generator)
        error = (flat - self.decode(self.encoder(corrupted))) ** 2
        if weight is not None:
            error = error * weight
        return error.sum(-1).mean()


class DenoisingAutoEncoder(AutoEncoder):
    """Denoising auto-encoder (Vincent, Larochelle, Bengio & Manzagol, ICML 2008): trained to
    reconstruct y from ỹ = y + σ ε (``noise="gaussian"``) or from y with a random fraction
    p of values set to 0 (``noise="mask"``). The energy at test time is the plain
    reconstruction error ‖y − Dec(Enc(y))‖².
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
                 noise: str = "gaussian", noise_std: float = 0.3, drop_prob: float = 0.3,
                 **kwargs: object) -> None:
        super().__init__(in_dim, latent_dim, hidden, **kwargs)
        check_choice("noise", noise, ("gaussian", "mask"))
        check_positive("noise_std", noise_std, allow_zero=True)
        if not 0 <= drop_prob < 1:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.noise, self.noise_std, self.drop_prob = noise, noise_std, drop_prob

    def corrupt(self, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        device = _draw_device(generator)
        if self.noise == "gaussian":
            eps = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=device).to(y.device)
            return y + self.noise_std * eps, None
        keep = torch.rand(y.shape, generator=generator, device=device).to(y.device) >= self.drop_prob
        return y * keep, None


class MaskedAutoEncoder(AutoEncoder):
    """Masked auto-encoder: a random fraction ``mask_ratio`` of pixels (or of square
    ``patch_size`` patches of an image of shape ``image_shape`` = (C, H, W)) is zeroed at
    the input and the loss counts only the masked values,
    L = Σ m ⊙ (y − Dec(Enc((1 − m) ⊙ y)))²  (He et al. 2022, with an MLP instead of a ViT).
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
                 mask_ratio: float = 0.5, patch_size: int | None = None,
                 image_shape: Sequence[int] | None = None, **kwargs: object) -> None:
        super().__init__(in_dim, latent_dim, hidden, **kwargs)
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if patch_size is not None:
            if image_shape is None or len(image_shape) != 3 or math.prod(image_shape) != in_dim:
                raise ValueError(f"patch masking needs image_shape=(C, H, W) with C·H·W = {in_dim}, "
                                 f"got {image_shape}")
            if image_shape[1] % patch_size or image_shape[2] % patch_size:
                raise ValueError(f"patch_size={patch_size} must divide the image size "
                                 f"{tuple(image_shape[1:])}")
        self.mask_ratio, self.patch_size = mask_ratio, patch_size
        self.image_shape = None if image_shape is None else tuple(image_shape)

    def random_mask(self, batch: int, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> Tensor:
        """Mask m (B, in_dim), 1 = hidden: pixels, or whole patches shared by channels."""
        if self.patch_size is None:
            return (torch.rand(batch, self.in_dim, generator=generator, device=_draw_device(generator))
                    < self.mask_ratio).float().to(device)
        c, h, w = self.image_shape
        p = self.patch_size
        grid = (torch.rand(batch, 1, h // p, w // p, generator=generator, device=_draw_device(generator))
                < self.mask_ratio).float().to(device)
        mask = grid.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3).expand(batch, c, h, w)
        return mask.reshape(batch, self.in_dim).to(device)

    def corrupt(self, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        mask = self.random_mask(y.shape[0], generator, y.device).to(y.dtype)
        return y * (1 - mask), mask


def fit_autoencoder(model: nn.Module, data: Tensor, *, epochs: int = 10, batch_size: int = 128,
                    lr: float = 1e-3, generator: torch.Generator | None = None,
                    progress: bool = False,
                    on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Train any model with a ``loss(y, generator)`` method (the auto-encoders here and
    :class:`genoise.latent.vae.VAE`) by Adam on minibatches of ``data`` (N, ...).

    Returns the mean training loss of every epoch. ``on_epoch(epoch, loss)`` is called
    after each epoch (logging).
    """
    check_finite("data", data)
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty batch (N, ...), got shape {tuple(data.shape)}")
    check_positive("lr", lr)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc=type(model).__name__, leave=False)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(data.shape[0], generator=generator)
        total = 0.0
        for start in range(0, data.shape[0], batch_size):
            batch = data[order[start:start + batch_size]]
            loss = model.loss(batch, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.shape[0]
        history.append(total / data.shape[0])
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return history
