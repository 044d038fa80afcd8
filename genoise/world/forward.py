"""Forward models ``s[t+1] = G(s[t-k+1..t], a[t], z[t])`` over ego-centred rasters and ego
states (Henaff, Canziani & LeCun, ICLR 2019; pytorch-PPUU ``FwdCNN`` / ``FwdCNN_VAE``).

- Deterministic (``nz = 0``): a ConvNet encodes the ``k`` past rasters, an MLP the ``k``
  past states, a linear map the action; their sum ``h`` (with dropout) is decoded into the
  *change* of the raster (``clip(last + D(h), 0, 1)``; the decoder starts at zero, so an
  untrained model copies the last frame) and the change of the normalised state. The paper
  decodes the frame directly; with minutes of CPU training that model stayed blurrier than
  copying the last frame (test MSE 0.0177 vs 0.0020 at one step), hence the residual.
- Stochastic (``nz > 0``): a conditional VAE. In training ``z ~ q(z | h, s[t+1]) =
  N(mu, diag sigma^2)`` is inferred from the target (reparameterised), and with probability
  ``z_dropout`` (0.5 in the paper) a sample's ``z`` is set to 0 so that the model also
  predicts well without it; the loss adds ``beta * KL(q || p)``. At test time ``z`` is
  drawn from the prior ``p``: ``N(0, I)``, or (``learned_prior``) a conditional prior
  ``p(z | h) = N(m(h), diag s(h)^2)`` trained by the same KL term (the paper's learned prior).

Latents in rollouts are given as the prior's standard noise ``eps ~ N(0, I)``
(:meth:`ForwardModel.sample_prior`): each step maps it to ``z = m(h) + s(h) eps``
(:meth:`ForwardModel.latent`; ``z = eps`` for the ``N(0, I)`` prior). Latents inferred from a
data sequence (:func:`posterior_noise`) are expressed in the same coordinates, so every
rollout, planner and policy takes either.

The energy view: ``E(x, y, z) = ||y - G(x, z)||^2`` with ``x`` the past and action, ``y``
the next frame; the VAE's KL term is the latent regulariser ``R(z)``.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise.latent.regularizers import kl_divergence, reparameterize
from genoise.world.raster import CARS, EGO, RasterSpec, lane_profile

CAR_MOTIONS = ("kinematic", "learned")


def ego_step(speed: Tensor, y: Tensor, action: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """The simulator's integrator for the ego car: ``v' = max(0, v + a dt)``,
    ``y' = y + a_y dt`` for speeds and lateral positions (...) and actions (..., 2)."""
    return (speed + action[..., 0] * dt).clamp(min=0.0), y + action[..., 1] * dt


def ego_trajectory(speed: Tensor, y: Tensor, actions: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """Speeds and lateral positions (B, T) after each of the actions (B, T, 2), from
    ``speed``, ``y`` (B,) by :func:`ego_step` (``max(0, ·)`` makes the speed a scan, not a
    cumulative sum)."""
    speeds, lateral = [], []
    for t in range(actions.shape[1]):
        speed, y = ego_step(speed, y, actions[:, t], dt)
        speeds.append(speed)
        lateral.append(y)
    return torch.stack(speeds, 1), torch.stack(lateral, 1)


def conv_encoder(in_channels: int, width: int, shape: tuple[int, int], out_features: int) -> nn.Sequential:
    """The raster encoder of the forward model and the driving policy (pytorch-PPUU's
    ``encoder``): three 4×4 convolutions of stride 2 (``width``, ``2 width``, ``2 width``
    channels, ReLU after each), flattened, then a linear map to ``out_features``.

    (B, in_channels, H, W) → (B, out_features); H and W must be multiples of 8."""
    h, w = shape
    if h % 8 or w % 8:
        raise ValueError(f"raster shape must be multiples of 8 for the ConvNet, got {tuple(shape)}")
    stack = nn.Sequential(
        nn.Conv2d(in_channels, width, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 4, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
    )
    return nn.Sequential(stack, nn.Linear(2 * width * (h // 8) * (w // 8), out_features))


class ForwardModel(nn.Module):
    """Predict the next raster (3, H, W) and ego state from ``history`` past ones and an action.

    Parameters
    ----------
    history : k, the number of conditioning frames.
    raster : raster resolution (H and W must be multiples of 8).
    nz : latent size; 0 makes the model deterministic.
    dropout : dropout on the hidden code (its masks give the uncertainty estimate).
    state_dim, action_dim : sizes of the ego state and the action.
    ego_kinematics : {"dt", "n_lanes", "lane_width"} or None: the ego moves by the simulator's
        integrator and the network predicts only the other cars (:meth:`kinematic_decode`).
    action_conditioned : with ``ego_kinematics``, the network also sees the ego's action
        (``h + W_a a``, as in Henaff et al. 2019, where the predictor conditions on the action):
        its prediction of the ego-centred scene — and so its dropout uncertainty — can depend
        on where the ego goes. Off by default: the invisible-car reference frame ignores it.
    car_motion : with ``ego_kinematics``, how the other cars move in the ego's frame:
        ``"kinematic"`` (default) — the network predicts them in the frame of a reference ego
        that keeps its speed and lane, and they are shifted by the ego's exact deviation from
        it (:meth:`kinematic_decode`, :func:`rollout`), so the action reaches the scene only
        through known physics; ``"learned"`` — the network predicts them directly in the ego's
        own frame, one step at a time from its own ego-centred predictions, reading the action
        (needs ``action_conditioned``): the apparent motion of the scene caused by the ego's
        braking or swerving is learned, as in the paper's forward model, so its dropout
        uncertainty can grow for actions unlike the data's. The ego state and the lane
        channel stay exact either way.
    learned_prior : (``nz > 0``) a conditional prior ``p(z | h) = N(m(h), diag s(h)^2)``
        instead of ``N(0, I)``; its head starts at zero, i.e. at ``N(0, I)``.
    """

    def __init__(
        self,
        history: int = 4,
        raster: RasterSpec | None = None,
        nz: int = 0,
        width: int = 16,
        hidden: int = 256,
        dropout: float = 0.1,
        state_dim: int = 3,
        action_dim: int = 2,
        ego_kinematics: dict[str, float] | None = None,
        action_conditioned: bool = False,
        learned_prior: bool = False,
        car_motion: str = "kinematic",
    ) -> None:
        super().__init__()
        self.raster = raster or RasterSpec()
        h, w = self.raster.shape
        if h % 8 or w % 8:
            raise ValueError(f"raster shape must be multiples of 8 for the ConvNet, got {self.raster.shape}")
        self.kwargs = dict(
            history=history,
            raster=asdict(self.raster),
            nz=nz,
            width=width,
            hidden=hidden,
            dropout=dropout,
            state_dim=state_dim,
            action_dim=action_dim,
            ego_kinematics=None if ego_kinematics is None else dict(ego_kinematics),
            action_conditioned=bool(action_conditioned),
            learned_prior=bool(learned_prior),
            car_motion=str(car_motion),
        )
        if ego_kinematics is not None:
            missing = {"dt", "n_lanes", "lane_width"} - set(ego_kinematics)
            if missing or state_dim != 3 or action_dim != 2:
                raise ValueError(
                    "ego_kinematics needs keys dt, n_lanes, lane_width and state (y, v, v_y) / action "
                    f"(acceleration, lateral velocity); missing {sorted(missing)}"
                )
        self.kinematics = None if ego_kinematics is None else dict(ego_kinematics)
        if action_conditioned and ego_kinematics is None:
            raise ValueError(
                "action_conditioned applies to ego_kinematics models (the others always see the action)"
            )
        self.action_conditioned = bool(action_conditioned)
        if car_motion not in CAR_MOTIONS:
            raise ValueError(f"car_motion must be one of {', '.join(CAR_MOTIONS)}, got {car_motion!r}")
        if car_motion == "learned" and not self.action_conditioned:
            raise ValueError("car_motion='learned' needs an action_conditioned ego_kinematics model "
                             "(the network moves the other cars, so it must read the action)")
        self.car_motion = str(car_motion)
        if learned_prior and nz == 0:
            raise ValueError("learned_prior needs a latent (nz > 0)")
        self.learned_prior = bool(learned_prior)
        self.history, self.nz, self.state_dim, self.action_dim = history, nz, state_dim, action_dim
        self.grid = (2 * width, h // 8, w // 8)
        flat = 2 * width * (h // 8) * (w // 8)
        self.encoder = conv_encoder(3 * history, width, self.raster.shape, hidden)
        self.state_encoder = nn.Sequential(
            nn.Linear(state_dim * history, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.action_encoder = nn.Linear(action_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.to_grid = nn.Linear(hidden, flat)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, 2 * width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 3, 4, 2, 1),
        )
        self.state_head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, state_dim))
        nn.init.zeros_(self.decoder[-1].weight)  # untrained: copy the last frame
        nn.init.zeros_(self.decoder[-1].bias)
        if nz > 0:
            self.target_encoder = conv_encoder(3, width, self.raster.shape, hidden)
            self.posterior = nn.Sequential(nn.ReLU(), nn.Linear(2 * hidden + state_dim, 2 * nz))
            self.z_encoder = nn.Linear(nz, hidden)
        if self.learned_prior:
            self.prior_head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, 2 * nz))
            nn.init.zeros_(self.prior_head[-1].weight)  # starts at N(0, I)
            nn.init.zeros_(self.prior_head[-1].bias)
        for name in ("state_mean", "action_mean"):
            self.register_buffer(name, torch.zeros(state_dim if "state" in name else action_dim))
        for name in ("state_std", "action_std"):
            self.register_buffer(name, torch.ones(state_dim if "state" in name else action_dim))

    def set_normalisation(self, states: Tensor, actions: Tensor) -> None:
        """Store mean / std of (N, state_dim) states and (N, action_dim) actions."""
        self.state_mean.copy_(states.mean(0))
        self.state_std.copy_(states.std(0).clamp(min=1e-3))
        self.action_mean.copy_(actions.mean(0))
        self.action_std.copy_(actions.std(0).clamp(min=1e-3))

    @property
    def reference_frame(self) -> bool:
        """True for ``ego_kinematics`` models with ``car_motion="kinematic"``: rollouts predict
        the other cars in a reference ego's frame and shift them by the ego's exact motion
        (:func:`rollout`); False when every step is predicted in the ego's own frame."""
        return self.kinematics is not None and self.car_motion == "kinematic"

    def encode(self, images: Tensor, states: Tensor, action: Tensor) -> Tensor:
        """Hidden code ``h`` (B, hidden) of images (B, k, 3, H, W), states (B, k, S), action (B, A)."""
        b = images.shape[0]
        s = (states - self.state_mean) / self.state_std
        a = (action - self.action_mean) / self.action_std
        h = self.encoder(images.reshape(b, -1, *images.shape[-2:])) + self.state_encoder(s.reshape(b, -1))
        if self.kinematics is not None and not self.action_conditioned:
            return h  # other cars ignore the ego (invisible-car setting)
        return h + self.action_encoder(a)

    def infer_latent(self, h: Tensor, target_image: Tensor, target_state: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance (B, nz) given the target."""
        s = (target_state - self.state_mean) / self.state_std
        stats = self.posterior(torch.cat([h, self.target_encoder(target_image), s], -1))
        return stats.chunk(2, dim=-1)

    def prior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance (B, nz) of the prior ``p(z | h)`` (zeros for ``N(0, I)``)."""
        if self.nz == 0:
            raise ValueError("a deterministic model (nz = 0) has no latent prior")
        if not self.learned_prior:
            zeros = h.new_zeros(h.shape[0], self.nz)
            return zeros, zeros
        return self.prior_head(h).chunk(2, dim=-1)

    def latent(self, h: Tensor, noise: Tensor | None) -> Tensor | None:
        """The latent ``z = m(h) + exp(logvar(h) / 2) * noise`` of the prior's standard
        ``noise`` (B, nz) (``z = noise`` for ``N(0, I)``; None stays None, i.e. ``z = 0``)."""
        if noise is None or not self.learned_prior:
            return noise
        mu, logvar = self.prior(h)
        return mu + (0.5 * logvar).exp() * noise

    def decode(
        self,
        h: Tensor,
        last_image: Tensor,
        last_state: Tensor,
        z: Tensor | None = None,
        action: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Next raster ``clip(last_image + D(h), 0, 1)`` and state ``last + std * g(h)``
        (with ``ego_kinematics``: see :meth:`kinematic_decode`, which needs ``action``)."""
        if self.nz > 0 and z is not None:
            h = h + self.z_encoder(z)
        h = self.dropout(h)
        delta = self.decoder(self.to_grid(h).view(-1, *self.grid))
        if self.kinematics is not None:
            if action is None:
                raise ValueError("a model with ego_kinematics needs the action to decode")
            return self.kinematic_decode(delta, last_image, last_state, action)
        image = (last_image + delta).clamp(0.0, 1.0)
        state = last_state + self.state_head(h) * self.state_std
        return image, state

    def kinematic_decode(
        self, delta: Tensor, last_image: Tensor, last_state: Tensor, action: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Known ego kinematics + learned other cars (``ego_kinematics`` models).

        The ego state follows the simulator's integrator exactly: ``v' = max(0, v + a dt)``,
        ``y' = y + a_y dt``, ``v_y' = a_y``. The lane channel is re-drawn at ``y'``
        (:func:`~genoise.world.raster.lane_profile`), the ego channel is unchanged, and the
        other cars are predicted by the network (a residual on the last frame) in the frame of
        a reference ego that keeps its speed ``v`` and lane position — they do not react to the
        ego, as in the invisible-car setting — then translated by the ego's deviation from it,
        ``((v' - v) dt, a_y dt)``, with bilinear sampling. So the predicted raster, and every
        cost computed from it, is differentiable in the action, and an untrained model with
        ``a = 0`` copies the last frame exactly."""
        dt = float(self.kinematics["dt"])
        y, v = last_state[:, 0], last_state[:, 1]
        v_next, y_next = ego_step(v, y, action, dt)
        state = torch.stack([y_next, v_next, action[:, 1]], -1)
        cars = (last_image[:, CARS] + delta[:, CARS]).clamp(0.0, 1.0)
        if self.car_motion == "learned":  # the network's cars are already in the ego's frame
            return self.draw(cars, y_next, last_image[:, EGO]), state
        image = self.compose(cars, (v_next - v) * dt, action[:, 1] * dt, y_next, last_image[:, EGO])
        return image, state

    def compose(self, cars: Tensor, along: Tensor, across: Tensor, ego_y: Tensor, ego: Tensor) -> Tensor:
        """Raster (N, 3, H, W) of an ego car that is ``along`` metres ahead of and ``across``
        metres left of the frame in which the other cars ``cars`` (N, H, W) were drawn
        (bilinear sampling, zeros outside), with the lane channel drawn at ``ego_y`` (N,) and
        the ego channel ``ego`` (N, H, W) (:meth:`draw`); differentiable in ``along``,
        ``across``, ``ego_y``."""
        n, (h, w) = cars.shape[0], self.raster.shape
        ext_x, ext_y = self.raster.extent
        rows = (2 * torch.arange(h, dtype=cars.dtype, device=cars.device) + 1) / h - 1
        cols = (2 * torch.arange(w, dtype=cars.dtype, device=cars.device) + 1) / w - 1
        grid_y = rows.view(1, h, 1) - (2 * along / ext_x).view(n, 1, 1)
        grid_x = cols.view(1, 1, w) + (2 * across / ext_y).view(n, 1, 1)
        grid = torch.stack(torch.broadcast_tensors(grid_x, grid_y), -1)  # (N, H, W, 2) as (x, y)
        cars = F.grid_sample(
            cars.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )[:, 0]
        return self.draw(cars, ego_y, ego)

    def draw(self, cars: Tensor, ego_y: Tensor, ego: Tensor) -> Tensor:
        """Raster (N, 3, H, W) of the other cars (N, H, W) as they are, the lane channel drawn
        at the ego's lateral position ``ego_y`` (N,) and the ego channel ``ego`` (N, H, W)."""
        kin = self.kinematics
        lanes = lane_profile(ego_y, self.raster, int(kin["n_lanes"]), kin["lane_width"])
        return torch.stack([lanes.unsqueeze(1).expand(*cars.shape), cars, ego], 1)

    def reference_future(
        self,
        images: Tensor,
        states: Tensor,
        steps: int,
        z: Tensor | None = None,
        actions: Tensor | None = None,
    ) -> Tensor:
        """(``ego_kinematics`` models) The other cars (B, T, H, W) over ``steps`` steps in the
        frame of a reference ego that keeps its last speed and lateral position. In the
        invisible-car setting nobody reacts to the ego, so this does not depend on the
        ego's actions: any action sequence's rollout is this future shifted by the ego's
        deviation from the reference (:func:`rollout`). An ``action_conditioned`` model
        reads the ego's ``actions`` (B, T, A) in its code at every step (the frame stays the
        reference one), so its future — and its uncertainty — depends on them."""
        if not self.reference_frame:
            raise ValueError("reference_future needs an ego_kinematics model with car_motion='kinematic' "
                             "(a learned car motion predicts every step in the ego's own frame)")
        future = []
        for t in range(steps):
            step_action = None if actions is None else actions[:, t]
            step_z = None if z is None else z[:, t]
            cars, images, states = self.reference_step(images, states, step_action, step_z)
            future.append(cars)
        return torch.stack(future, 1)

    def reference_step(
        self, images: Tensor, states: Tensor, action: Tensor | None, z: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step of :meth:`reference_future`: the other cars (B, H, W) at the next step and
        the reference histories moved on by one frame. The code sees ``action`` (an
        ``action_conditioned`` model; zeros when None); the frame is the reference ego's."""
        keep = torch.zeros(images.shape[0], self.action_dim, dtype=images.dtype, device=images.device)
        h = self.encode(images, states, keep if action is None else action)
        image, state = self.decode(h, images[:, -1], states[:, -1], self.latent(h, z), keep)
        images = torch.cat([images[:, 1:], image.unsqueeze(1)], 1)
        states = torch.cat([states[:, 1:], state.unsqueeze(1)], 1)
        return image[:, CARS], images, states

    def forward(
        self, images: Tensor, states: Tensor, action: Tensor, z: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step: (B, 3, H, W) next raster and (B, S) next state; ``z`` is the prior's
        standard noise (see :meth:`latent`)."""
        h = self.encode(images, states, action)
        return self.decode(h, images[:, -1], states[:, -1], self.latent(h, z), action)

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor | None:
        """The prior's standard noise ``eps ~ N(0, I)`` of shape (*shape, nz) (each rollout step
        maps it through :meth:`latent`), or None for a deterministic model."""
        if self.nz == 0:
            return None
        return torch.randn(*shape, self.nz, generator=generator, device=self.state_mean.device)


def rollout(
    model: ForwardModel,
    images: Tensor,
    states: Tensor,
    actions: Tensor,
    z: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Autoregressive prediction over actions (B, T, A), feeding predictions back.

    ``z`` (B, T, nz) are the latents per step (None → 0 for a VAE). Returns predicted
    rasters (B, T, 3, H, W) and states (B, T, S).

    A model with ``ego_kinematics`` is rolled out as the invisible-car world works: the other
    cars' future is predicted once in the frame of an ego that keeps its speed and lane
    (:meth:`ForwardModel.reference_future`), and each step's raster is that future shifted by
    the ego's accumulated deviation ``sum_s (v_s - v_0) dt`` ahead and ``y_t - y_0`` sideways,
    the ego following the simulator's integrator. (Feeding the shifted frames back into the
    network instead would ask it to extrapolate the ego's speed change from its own blurred
    predictions: measured, 3 s of braking at 3 m/s² then brought the followers almost no
    closer.) For one step both are the same. A model with ``car_motion="learned"`` is rolled
    out step by step in the ego's frame, as the fully learned one: each step's prediction is
    fed back and the next step reads the next action."""
    if model.reference_frame:
        reference = model.reference_future(
            images, states, actions.shape[1], z, actions if model.action_conditioned else None
        )
        return kinematic_rollout(model, reference, images, states, actions)
    predicted_images, predicted_states = [], []
    for t in range(actions.shape[1]):
        image, state = model(images, states, actions[:, t], None if z is None else z[:, t])
        predicted_images.append(image)
        predicted_states.append(state)
        images = torch.cat([images[:, 1:], image.unsqueeze(1)], 1)
        states = torch.cat([states[:, 1:], state.unsqueeze(1)], 1)
    return torch.stack(predicted_images, 1), torch.stack(predicted_states, 1)


def kinematic_rollout(
    model: ForwardModel, reference: Tensor, images: Tensor, states: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor]:
    """Rasters (B, T, 3, H, W) and states (B, T, 3) of the ego driving ``actions`` (B, T, 2)
    through the other cars' ``reference`` future (B, T, H, W) (see :func:`rollout`)."""
    b, steps = actions.shape[:2]
    dt = float(model.kinematics["dt"])
    y0, v0 = states[:, -1, 0], states[:, -1, 1]
    v, y = ego_trajectory(v0, y0, actions, dt)
    along = torch.cumsum((v - v0.unsqueeze(1)) * dt, 1)
    ego = images[:, -1, EGO].unsqueeze(1).expand(b, steps, *images.shape[-2:])
    flat = lambda t: t.reshape(b * steps, *t.shape[2:])  # noqa: E731
    pictures = model.compose(
        flat(reference), flat(along), flat(y - y0.unsqueeze(1)), flat(y), flat(ego)
    ).view(b, steps, 3, *images.shape[-2:])
    return pictures, torch.stack([y, v, actions[..., 1]], -1)


UNROLL_FRAMES = ("ego", "reference")
STEP_WEIGHTS = ("uniform", "harmonic")


def unroll_step_weights(n: int, kind: str = "uniform") -> Tensor | None:
    """Weights ``w_t`` (n,) of the ``n`` steps of a training unroll, summing to 1; ``None`` for
    ``"uniform"`` (``w_t = 1/n``, computed as the plain mean). ``"harmonic"``:
    ``w_t = (1/t) / H_n`` for ``t = 1 … n`` (``H_n`` the n-th harmonic number). A rollout's
    squared error grows about linearly with the step, so uniform weights hand the first steps a
    small share of the loss (step 1 of 10 under 2 %); harmonic weights give each step's
    *relative* error about the same share, meant to keep a long unroll's first steps accurate
    (measured in docs/world.md)."""
    if kind not in STEP_WEIGHTS:
        raise ValueError(f"step_weights must be one of {STEP_WEIGHTS}, got {kind!r}")
    if kind == "uniform":
        return None
    inverse = 1.0 / torch.arange(1, n + 1, dtype=torch.float64)
    return (inverse / inverse.sum()).float()


def forward_model_loss(
    model: ForwardModel,
    batch: dict[str, Tensor],
    beta: float = 1e-6,
    z_dropout: float = 0.5,
    generator: torch.Generator | None = None,
    unroll_frame: str = "ego",
    step_weights: str = "uniform",
) -> dict[str, Tensor]:
    """Training loss over the batch's ``F`` future steps (teacher-forced actions,
    autoregressive frames): ``MSE(images) + MSE(normalised states) + beta * KL``, each the
    mean over the ``F`` steps, or with ``step_weights="harmonic"`` the sum weighted by
    :func:`unroll_step_weights`.

    ``unroll_frame`` says which frames the unroll feeds back. ``"ego"``: each step's
    prediction in the ego's own frame (after the ego's exact motion). ``"reference"`` (models
    with :attr:`ForwardModel.reference_frame`): the steps are predicted as :func:`rollout`
    predicts them — the network's frames and states are those of a reference ego that keeps
    its speed and lane (:meth:`ForwardModel.reference_step`), and the loss compares the
    reference future shifted by the ego's exact deviation (:func:`kinematic_rollout`) with
    the recorded frames. The model is then trained on the inputs it is rolled out on; an
    ``action_conditioned`` one otherwise meets, from the second step of a rollout on, a
    history that keeps its speed beside an action that changes it, a pair the ego unroll
    never shows it. The one-step loss is the same either way."""
    if unroll_frame not in UNROLL_FRAMES:
        raise ValueError(f"unroll_frame must be one of {UNROLL_FRAMES}, got {unroll_frame!r}")
    if unroll_frame == "reference" and not model.reference_frame:
        raise ValueError("unroll_frame='reference' needs an ego_kinematics model with car_motion='kinematic'")
    images, states, actions = batch["images"], batch["states"], batch["actions"]
    reference, n = unroll_frame == "reference", actions.shape[1]
    weights = unroll_step_weights(n, step_weights)
    # the per-step terms are summed, then divided by n: step t counts n * w_t (1 when uniform)
    scale = [1.0] * n if weights is None else (weights.to(images.device) * n).unbind()
    keep_course = torch.zeros_like(actions[:, 0])
    image_loss = state_loss = kl = images.new_zeros(())
    cars = []
    for t in range(n):
        target_image, target_state = batch["target_images"][:, t], batch["target_states"][:, t]
        h = model.encode(images, states, actions[:, t])
        z = None
        if model.nz > 0:
            mu, logvar = model.infer_latent(h, target_image, target_state)
            z = reparameterize(mu, logvar, generator)
            keep = (torch.rand(mu.shape[0], 1, generator=generator, device=mu.device) >= z_dropout).float()
            z = z * keep
            prior = model.prior(h) if model.learned_prior else (None, None)
            kl = kl + scale[t] * kl_divergence(mu, logvar, *prior).mean()
        image, state = model.decode(h, images[:, -1], states[:, -1], z,
                                    keep_course if reference else actions[:, t])
        if reference:
            cars.append(image[:, CARS])
        else:
            image_loss = image_loss + scale[t] * F.mse_loss(image, target_image)
            state_loss = state_loss + scale[t] * F.mse_loss(
                (state - target_state) / model.state_std, torch.zeros_like(state)
            )
        images = torch.cat([images[:, 1:], image.unsqueeze(1)], 1)
        states = torch.cat([states[:, 1:], state.unsqueeze(1)], 1)
    if reference:
        pictures, ego_states = kinematic_rollout(
            model, torch.stack(cars, 1), batch["images"], batch["states"], actions
        )
        state_error = ((ego_states - batch["target_states"]) / model.state_std).pow(2)
        if weights is None:
            image_loss = F.mse_loss(pictures, batch["target_images"]) * n
            state_loss = state_error.mean() * n
        else:
            w = torch.stack(scale)
            image_loss = ((pictures - batch["target_images"]).pow(2).mean((0, 2, 3, 4)) * w).sum()
            state_loss = (state_error.mean((0, 2)) * w).sum()
    total = (image_loss + state_loss) / n + beta * kl / n
    return {"loss": total, "image_mse": image_loss / n, "state_mse": state_loss / n, "kl": kl / n}


def posterior_noise(
    model: ForwardModel, batch: dict[str, Tensor], generator: torch.Generator | None = None
) -> Tensor:
    """Latents (B, T, nz) sampled from the posterior ``q(z_t | h_t, s_{t+1})`` of the batch's
    data sequences (its ``T = F`` future steps, teacher-forced: ``h_t`` encodes the recorded
    history and action at ``t``), expressed as the prior's standard noise
    ``(z_t - m(h_t)) / s(h_t)`` (:meth:`ForwardModel.latent`), so that a one-step prediction
    from the recorded history and action uses the sampled ``z_t`` exactly. Henaff et al.
    (2019) train MPUR with latents inferred from data sequences rather than drawn from the
    prior. No gradient; deterministic given ``generator``."""
    if model.nz == 0:
        raise ValueError("posterior latents need a stochastic model (nz > 0)")
    images, states, actions = batch["images"], batch["states"], batch["actions"]
    noise = []
    with torch.no_grad():
        for t in range(actions.shape[1]):
            target_image, target_state = batch["target_images"][:, t], batch["target_states"][:, t]
            h = model.encode(images, states, actions[:, t])
            z = reparameterize(*model.infer_latent(h, target_image, target_state), generator)
            mu, logvar = model.prior(h)
            noise.append((z - mu) * (-0.5 * logvar).exp())
            images = torch.cat([images[:, 1:], target_image.unsqueeze(1)], 1)
            states = torch.cat([states[:, 1:], target_state.unsqueeze(1)], 1)
    return torch.stack(noise, 1)


def prediction_error(
    model: ForwardModel,
    batch: dict[str, Tensor],
    generator: torch.Generator | None = None,
    per_sample: bool = False,
) -> dict[str, Tensor]:
    """Per-horizon MSE (T,) of the model's rollout (z from the prior) and of the
    copy-the-last-frame baseline, on a batch with ``F = T`` future steps; ``per_sample``:
    each sample's (B, T), for paired comparisons of two models on the same batch."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        b, t = batch["actions"].shape[:2]
        z = model.sample_prior((b, t), generator)
        images, states = rollout(model, batch["images"], batch["states"], batch["actions"], z)
    model.train(was_training)
    target = batch["target_images"]
    copy = batch["images"][:, -1:].expand_as(target)
    first = () if per_sample else (0,)
    return {
        "model": (images - target).pow(2).mean((*first, 2, 3, 4)),
        "copy_last": (copy - target).pow(2).mean((*first, 2, 3, 4)),
        "state_model": ((states - batch["target_states"]) / model.state_std).pow(2).mean((*first, 2)),
    }
