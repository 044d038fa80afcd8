"""An action-conditioned joint-embedding predictive architecture (JEPA): a world model
that predicts the next *representation*, never a pixel (LeCun 2022, "A path towards
autonomous machine intelligence"; eb_jepa's ``ac_video_jepa``; PLDM, Sobal et al. 2025).

    z_t = Enc(o_t)                      encoder (a small strided ConvNet, or IMPALA's residual one)
    ẑ_{t+1} = Pred(ẑ_t, a_t)            predictor: residual MLP, or a GRU cell (the reference's)
    energy  E = Σ_k Σ_t ‖ẑ^{(k)}_t − z_t‖² / (B·T·D)   (multi-step, :func:`prediction_loss`)

(``predictor="conv"``: the encoder keeps a C × h × w map s_t, a convolutional predictor
rolls it out, and z_t = Head(s_t); the energy compares maps, the regularisers see z.)

Collapse (z constant) has zero prediction energy, so the volume of low energy is limited
by regularisers on the encoder's outputs Z (B·T samples of dimension D), as in eb_jepa:

- variance  v(Z) = (1/D) Σ_j max(0, 1 − sqrt(Var z_j + 1e-4))  (VICReg's hinge),
- covariance c(Z) = Σ_{i≠j} C(Z)²_{ij} / (D(D − 1))  — eb_jepa's normalisation; VICReg's
  official code divides by D (so our 8·c equals VICReg-style 8/(D−1)·c),
- time similarity  s_t = mean ‖z_{t+1} − z_t‖² / D  (slow features),
- inverse dynamics  IDM = mean ‖a_t − g(z_t, z_{t+1})‖² / 2  (an MLP g; it keeps in z what
  the action changes, against the spurious wall features that random walls invite),

with the reference's weights L = pred + 8·cov + 16·var + 12·time_sim + 1·IDM; or SIGReg
alone (LeJEPA, Balestriero & LeCun 2025: L = pred + λ·SIGReg(Z)). An online probe (a
linear map trained on detached z) decodes the dot's (x, y) for evaluation and figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_int
from genoise.ssl.infomax import variance_loss
from genoise.ssl.sigreg import sigreg_loss

PREDICTORS = ("mlp", "gru", "conv")
ENCODERS = ("conv", "impala")
REGULARIZERS = ("vc", "sigreg")


@dataclass(frozen=True)
class JEPAConfig:
    image_size: int = 33
    dim: int = 32
    width: int = 16
    hidden: int = 128
    predictor: str = "mlp"
    encoder: str = "conv"  # "impala": the reference's residual ConvNet (mlp and gru predictors)
    coords: bool = False
    projector: int = 0  # 0: regularise z itself; > 0: an MLP projector of that width
    map_channels: int = 8  # predictor="conv": channels C of the C × h × w state map
    map_hidden: int = 16  # predictor="conv": hidden channels of its 3 × 3 convolutions

    def __post_init__(self) -> None:
        check_int("image_size", self.image_size, min=9)
        check_int("dim", self.dim, min=2)
        check_int("width", self.width, min=1)
        check_int("hidden", self.hidden, min=1)
        check_choice("predictor", self.predictor, PREDICTORS)
        check_choice("encoder", self.encoder, ENCODERS)
        if self.encoder == "impala" and self.predictor == "conv":
            raise ValueError(
                "encoder=impala needs predictor=mlp or gru (predictor=conv builds its own map encoder)"
            )
        check_int("projector", self.projector, min=0)
        check_int("map_channels", self.map_channels, min=1)
        check_int("map_hidden", self.map_hidden, min=1)


@dataclass(frozen=True)
class JEPALossWeights:
    """The reference's (eb_jepa ``train.yaml``) coefficients; ``regularizer="sigreg"`` uses
    ``sigreg`` alone (the other four are ignored)."""

    cov: float = 8.0
    var: float = 16.0
    time_sim: float = 12.0
    idm: float = 1.0
    sigreg: float = 1.0
    regularizer: str = "vc"
    rollout: int = 4
    hard: float = 0.0  # weight of the mean error of the hardest transitions (0: off)
    hard_fraction: float = 0.05

    def __post_init__(self) -> None:
        check_choice("regularizer", self.regularizer, REGULARIZERS)
        check_int("rollout", self.rollout, min=1)
        if not 0 < self.hard_fraction <= 1:
            raise ValueError(f"hard_fraction must lie in (0, 1], got {self.hard_fraction}")
        for name in ("cov", "var", "time_sim", "idm", "sigreg", "hard"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {getattr(self, name)}")


class AddCoords(nn.Module):
    """CoordConv (Liu et al. 2018): append two channels holding each pixel's x and y in
    [−1, 1], so that convolutions can localise a dot or a wall to sub-pixel precision."""

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x, xs, ys], 1)


def _stem(channels: int, width: int, coords: bool) -> list[nn.Module]:
    """The two stride-2 stages (w, 2w channels, kernel 4) both encoders start with."""
    return [
        *([AddCoords()] if coords else []),
        nn.Conv2d(channels + 2 * coords, width, 4, 2, 1),
        nn.GELU(),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        nn.GELU(),
    ]


def conv_encoder(image_size: int, channels: int, width: int, dim: int, coords: bool = False) -> nn.Sequential:
    """ConvNet: [CoordConv channels] → 3 stride-2 stages (w, 2w, 2w channels) → flatten →
    Linear → D, then LayerNorm (eb_jepa's encoder also ends in a LayerNorm)."""
    body = nn.Sequential(
        *_stem(channels, width, coords),
        nn.Conv2d(2 * width, 2 * width, 3, 2, 1),
        nn.GELU(),
        nn.Flatten(),
    )
    return _with_head(body, image_size, channels, dim)


def _with_head(body: nn.Sequential, image_size: int, channels: int, dim: int) -> nn.Sequential:
    """A flattening ConvNet ``body`` → Linear → D → LayerNorm (the width of the flattened
    features found by running the body on one blank image)."""
    with torch.no_grad():
        flat = body(torch.zeros(1, channels, image_size, image_size)).shape[-1]
    return nn.Sequential(body, nn.Linear(flat, dim), nn.LayerNorm(dim))


class ResidualBlock(nn.Module):
    """ReLU(x + Conv₃ₓ₃(ReLU(Conv₃ₓ₃(x)))) at constant width — eb_jepa's ``ResnetBlock``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


def impala_encoder(
    image_size: int, channels: int, width: int, dim: int, coords: bool = False
) -> nn.Sequential:
    """IMPALA's ConvNet (Espeholt et al. 2018), as eb_jepa's ``ImpalaEncoder`` (the
    reference's encoder): [CoordConv channels] → 3 stacks of (w, 2w, 2w) channels — (16, 32,
    32) at w = 16, the reference's — each a 3 × 3 convolution, a 3 × 3 max-pool of stride 2 and
    two :class:`ResidualBlock` → ReLU → flatten → Linear → D → LayerNorm. About eight times
    :func:`conv_encoder`'s multiply-adds at the same w (≈ 9 M against 1.1 M per 33 px image at
    w = 16); what it changes in Two Rooms is measured in docs/jepa.md."""
    layers: list[nn.Module] = [AddCoords()] if coords else []
    previous = channels + 2 * coords
    for stack in (width, 2 * width, 2 * width):
        layers += [nn.Conv2d(previous, stack, 3, 1, 1), nn.MaxPool2d(3, 2, 1), ResidualBlock(stack),
                   ResidualBlock(stack)]
        previous = stack
    return _with_head(nn.Sequential(*layers, nn.ReLU(), nn.Flatten()), image_size, channels, dim)


def map_side(image_size: int) -> int:
    """h = w of :func:`map_encoder`'s map: two stride-2, kernel-4, padding-1 convolutions."""
    side = image_size
    for _ in range(2):
        side = (side + 2 - 4) // 2 + 1
    return side


def map_encoder(
    image_size: int, channels: int, width: int, map_channels: int, coords: bool = False
) -> nn.Sequential:
    """ConvNet keeping space: [CoordConv channels] → 2 stride-2 stages (w, 2w channels) → a
    3 × 3 convolution to C channels → the C × h × w map (h = w = 8 at 33 px, 16 at 65 px),
    flattened and normalised over all its C·h·w entries (a LayerNorm without gain): the
    state of :class:`ConvPredictor`."""
    body = nn.Sequential(
        *_stem(channels, width, coords),
        nn.Conv2d(2 * width, map_channels, 3, 1, 1),
        nn.Flatten(),
    )
    entries = map_channels * map_side(image_size) ** 2
    return nn.Sequential(body, nn.LayerNorm(entries, elementwise_affine=False))


class ConvPredictor(nn.Module):
    """s_{t+1} = N(s_t + Conv₃ₓ₃(GELU(Conv₃ₓ₃([s_t, a_t·1])))) on the C × h × w state map,
    the action broadcast as A constant channels; N normalises over the whole map, like the
    encoder's output. A 3 × 3 neighbourhood sees a wall next to the dot wherever they are
    (weights shared over space), where an MLP on a flat vector must learn each wall and
    door position from the data. States travel flattened, (..., C·h·w)."""

    def __init__(self, channels: int, side: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        self.net = nn.Sequential(
            nn.Conv2d(channels + action_dim, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 3, padding=1),
        )

    def forward(self, s: Tensor, action: Tensor) -> Tensor:
        lead, c, h = s.shape[:-1], self.channels, self.side
        maps = s.reshape(-1, c, h, h)
        a = action.reshape(-1, action.shape[-1], 1, 1).expand(-1, -1, h, h)
        x = torch.cat([maps, a], 1).contiguous(memory_format=torch.channels_last)
        out = (maps + self.net(x)).reshape(*lead, -1)
        return F.layer_norm(out, out.shape[-1:])


class MLPPredictor(nn.Module):
    """ẑ_{t+1} = LayerNorm(ẑ_t + MLP([ẑ_t, a_t])) — the final LayerNorm keeps predictions on
    the encoder's output manifold (eb_jepa's predictor also ends in one)."""

    def __init__(self, dim: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + action_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: Tensor, action: Tensor) -> Tensor:
        return self.norm(z + self.net(torch.cat([z, action], -1)))


class GRUPredictor(nn.Module):
    """ẑ_{t+1} = LayerNorm(ẑ_t + W·GRUCell(a_t, ẑ_t)) — the action is the input, the
    representation the hidden state (eb_jepa's ``RNNPredictor``, identity action encoder)."""

    def __init__(self, dim: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(action_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: Tensor, action: Tensor) -> Tensor:
        shape = z.shape
        h = self.cell(action.reshape(-1, action.shape[-1]), z.reshape(-1, shape[-1]))
        return self.norm(z + self.out(h).reshape(shape))


class ActionConditionedJEPA(nn.Module):
    """Encoder, predictor, inverse-dynamics head, optional projector and the (x, y) probe."""

    def __init__(self, config: JEPAConfig | None = None, action_dim: int = 2, channels: int = 2) -> None:
        super().__init__()
        self.config = config or JEPAConfig()
        c = self.config
        if c.predictor == "conv":
            side = map_side(c.image_size)
            self.encoder = map_encoder(c.image_size, channels, c.width, c.map_channels, c.coords)
            self.predictor = ConvPredictor(c.map_channels, side, action_dim, c.map_hidden)
            self.head = nn.Sequential(nn.Linear(c.map_channels * side * side, c.dim), nn.LayerNorm(c.dim))
        else:
            build = impala_encoder if c.encoder == "impala" else conv_encoder
            self.encoder = build(c.image_size, channels, c.width, c.dim, c.coords)
            predictor = MLPPredictor if c.predictor == "mlp" else GRUPredictor
            self.predictor = predictor(c.dim, action_dim, c.hidden)
            self.head = nn.Identity()
        self.idm = nn.Sequential(nn.Linear(2 * c.dim, c.hidden), nn.GELU(), nn.Linear(c.hidden, action_dim))
        self.projector = (
            nn.Sequential(nn.Linear(c.dim, c.projector), nn.GELU(), nn.Linear(c.projector, c.projector))
            if c.projector
            else nn.Identity()
        )
        self.probe = nn.Linear(c.dim, 2)
        # per-channel input standardisation (the reference's Normalizer): a faint dot
        # channel would otherwise lose to the walls; set from data by ``set_input_stats``
        self.register_buffer("obs_mean", torch.zeros(channels))
        self.register_buffer("obs_std", torch.ones(channels))

    def set_input_stats(self, observations: Tensor) -> None:
        """Per-channel mean and std of sample observations (N, C, S, S)."""
        self.obs_mean.copy_(observations.mean((0, 2, 3)))
        self.obs_std.copy_(observations.std((0, 2, 3)).clamp(min=1e-6))

    def encode(self, observations: Tensor) -> Tensor:
        """(..., C, S, S) → (..., state): the predictor's state, z itself (D) for the
        ``mlp`` and ``gru`` predictors, the flattened C × h × w map for ``conv``."""
        c = self.config
        if observations.shape[-2:] != (c.image_size, c.image_size):
            raise ValueError(
                f"observations are {tuple(observations.shape[-2:])} px but the model was built "
                f"for {c.image_size} × {c.image_size}"
            )
        lead = observations.shape[:-3]
        flat = observations.reshape(-1, *observations.shape[-3:])
        flat = (flat - self.obs_mean[:, None, None]) / self.obs_std[:, None, None]
        return self.encoder(flat).reshape(*lead, -1)

    def represent(self, state: Tensor) -> Tensor:
        """The representation z (..., D) of predictor states: what the regularisers, the
        probe and the planning cost see (the identity except for ``conv``, whose linear
        head reads the whole map)."""
        return self.head(state)

    def step(self, z: Tensor, action: Tensor) -> Tensor:
        return self.predictor(z, action)

    def unroll(self, z0: Tensor, actions: Tensor) -> Tensor:
        """Auto-regressive rollout: z0 (..., D), actions (..., H, A) → (..., H, D) = ẑ_1 … ẑ_H."""
        out, z = [], z0
        for t in range(actions.shape[-2]):  # the horizon is sequential; everything else is batched
            z = self.predictor(z, actions[..., t, :])
            out.append(z)
        return torch.stack(out, -2)


def multistep_predictions(predictor: nn.Module, z: Tensor, actions: Tensor, steps: int) -> list[Tensor]:
    """Predictions from every start at once (eb_jepa's "parallel" unroll): element ``k − 1``
    of the list is (B, T + 1 − k, D), the k-step prediction of z_{t+k} from z_t (fed its own
    predictions, never the targets). z: (B, T + 1, D); actions (B, T, A)."""
    out, pred = [], z[:, :-1]
    for k in range(1, min(steps, actions.shape[1]) + 1):
        pred = predictor(pred, actions[:, k - 1 :])
        out.append(pred)
        pred = pred[:, :-1]
    return out


def prediction_errors(predictor: nn.Module, z: Tensor, actions: Tensor, steps: int) -> list[Tensor]:
    """Per-transition errors ‖ẑ^{(k)}_t − z_{t+k}‖² / D of the k-step predictions: element
    ``k − 1`` is (B, T + 1 − k)."""
    preds = multistep_predictions(predictor, z, actions, steps)
    return [(p - z[:, k:]).square().mean(-1) for k, p in enumerate(preds, 1)]


def prediction_loss(predictor: nn.Module, z: Tensor, actions: Tensor, steps: int) -> Tensor:
    """Mean over k = 1 … steps of the mean squared error of the k-step predictions."""
    return mean_error(prediction_errors(predictor, z, actions, steps))


def mean_error(errors: list[Tensor]) -> Tensor:
    """Mean over k of the mean k-step error (each k weighs the same)."""
    return sum(e.mean() for e in errors) / len(errors)


def hard_mean(errors: list[Tensor], fraction: float) -> Tensor:
    """Mean of the largest ``fraction`` of all the per-transition errors — online hard-example
    mining (Shrivastava et al. 2016) on the prediction energy. Rare transitions (a dot
    stopped by the wall: ≈ 5 % of the data) weigh ≈ 5 % of :func:`prediction_loss`; this
    term lets them weigh as much as the rest. It uses no label."""
    flat = torch.cat([e.reshape(-1) for e in errors])
    return flat.topk(max(1, round(fraction * flat.numel()))).values.mean()


def covariance_loss_dd1(z: Tensor) -> Tensor:
    """Σ_{i≠j} C(Z)²_{ij} / (D(D − 1)), C the unbiased covariance of z (N, D) — eb_jepa's."""
    n, d = z.shape
    centred = z - z.mean(0)
    cov = centred.T @ centred / (n - 1)
    return (cov.square().sum() - cov.diagonal().square().sum()) / (d * (d - 1))


def time_similarity_loss(z: Tensor) -> Tensor:
    """mean over (b, t, j) of (z_{t+1} − z_t)²_j; z (B, T + 1, D)."""
    return (z[:, 1:] - z[:, :-1]).square().mean()


def jepa_losses(
    model: ActionConditionedJEPA,
    observations: Tensor,
    actions: Tensor,
    weights: JEPALossWeights,
    positions: Tensor | None = None,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Every term for a batch of trajectories: observations (B, T + 1, C, S, S), actions
    (B, T, A), optional true positions (B, T + 1, 2) (normalised) for the probe. Returns
    ``loss`` (what is minimised: weighted terms + probe) and each term unweighted."""
    states = model.encode(observations)
    errors = prediction_errors(model.predictor, states, actions, weights.rollout)
    z = model.represent(states)
    terms = {"pred": mean_error(errors)}
    pred = terms["pred"]
    if weights.hard > 0:
        terms["hard"] = hard_mean(errors, weights.hard_fraction)
        pred = pred + weights.hard * terms["hard"]
    flat = model.projector(z.reshape(-1, z.shape[-1]))
    if weights.regularizer == "vc":
        terms["var"] = variance_loss(flat)
        terms["cov"] = covariance_loss_dd1(flat)
        terms["time_sim"] = time_similarity_loss(z)
        pairs = torch.cat([z[:, :-1], z[:, 1:]], -1)
        terms["idm"] = F.mse_loss(model.idm(pairs), actions)
        loss = (
            pred
            + weights.cov * terms["cov"]
            + weights.var * terms["var"]
            + weights.time_sim * terms["time_sim"]
            + weights.idm * terms["idm"]
        )
    else:
        terms["sigreg"] = sigreg_loss(flat, seed=seed)
        loss = pred + weights.sigreg * terms["sigreg"]
    if positions is not None:
        terms["probe"] = F.mse_loss(model.probe(z.detach()), positions)
        loss = loss + terms["probe"]
    terms["loss"] = loss
    return terms


def config_dict(config: JEPAConfig) -> dict:
    return asdict(config)
