"""The Recurrent State-Space Model of Dreamer: a GRU state h and a stochastic latent z.

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])             deterministic path: remembers
    z_t ~ q(z_t | h_t, embed(o_t))                      posterior: filters a real observation
    z_t ~ p(z_t | h_t)                                  prior: what a dream samples
    o_t, r_t, c_t  <-  heads on features [h_t, z_t]     decoder, reward, continue

z is a diagonal Gaussian (Dreamer V1) or 32 categoricals of 32 classes mixed with 1% uniform
(DreamerV3's "unimix", which keeps every class possible so KL terms stay finite). The KL between
posterior and prior is split (DreamerV3's balancing): the dynamics term trains the prior towards
a frozen posterior, the representation term the posterior towards a frozen prior, each clipped
below at ``free_nats`` so that neither is pushed past the point where it stops carrying
information. Observations enter as symlog(state) through an MLP, or as pixels through a CNN.
"""

from typing import Any, NamedTuple

import gymnasium as gym
import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from worldkit.checkpoints import checkpointable
from worldkit.models.heads import ScalarHead, mlp, symexp, symlog
from worldkit.models.protocol import world_model
from worldkit.observations import obs_map
from worldkit.spaces import action_size, obs_shapes, space_from_dict, space_to_dict

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"deter": 64, "stoch": 8, "classes": 8, "hidden": 64, "layers": 1, "cnn_depth": 8},
    # DreamerV3's sizes (its paper's table of model sizes): GRU units, MLP units and layers, CNN depth.
    "XS": {"deter": 256, "stoch": 32, "classes": 32, "hidden": 256, "layers": 1, "cnn_depth": 24},
    "S": {"deter": 512, "stoch": 32, "classes": 32, "hidden": 512, "layers": 2, "cnn_depth": 32},
    "M": {"deter": 1024, "stoch": 32, "classes": 32, "hidden": 640, "layers": 3, "cnn_depth": 48},
    "L": {"deter": 2048, "stoch": 32, "classes": 32, "hidden": 768, "layers": 4, "cnn_depth": 64},
    "XL": {"deter": 4096, "stoch": 32, "classes": 32, "hidden": 1024, "layers": 5, "cnn_depth": 96},
    # Dreamer V1: a 30-dim Gaussian, 200 GRU units, one KL term with 3 free nats (both terms at
    # weight 1 give that term's gradients: to the prior and to the posterior).
    "v1": {"latent": "gaussian", "deter": 200, "stoch": 30, "classes": 1, "hidden": 300, "layers": 2,
           "cnn_depth": 32, "free_nats": 3.0, "dyn_scale": 1.0, "rep_scale": 1.0, "reward_head": "mse"},
}
DEFAULTS: dict[str, Any] = {"latent": "categorical", "free_nats": 1.0, "dyn_scale": 0.5, "rep_scale": 0.1,
                            "reward_head": "twohot"}


class RSSMState(NamedTuple):
    """h (B, deter) and z (B, stoch * classes), z one-hot per categorical or Gaussian."""

    deter: torch.Tensor
    stoch: torch.Tensor


class ObservationShapeError(ValueError):
    """Observations of another shape than the model was built for."""


@world_model
@checkpointable
class RSSM(L.LightningModule):
    """An RSSM world model (a LightningModule) behind the WorldModel protocol.

    Args:
        observation_space: a 1-D Box (state) or an (H, W, C) uint8 Box (pixels, H and W
            divisible by 16), or its :func:`~worldkit.spaces.space_to_dict` description.
        action_space: a 1-D Box or a Discrete space (or its description).
        size: a preset of :data:`PRESETS` ("tiny" for tests, "XS" to "XL" after DreamerV3, "v1").
        latent: ``"categorical"`` (V3) or ``"gaussian"`` (V1); None takes the preset's.
        deter: GRU units (None: the preset's, as for every size below).
        stoch: number of categoricals, or Gaussian dimensions.
        classes: classes per categorical.
        hidden: MLP units.
        layers: MLP hidden layers.
        cnn_depth: channels of the first convolution (pixels).
        unimix: share of uniform probability mixed into each categorical.
        free_nats: each KL term is clipped below at this many nats.
        dyn_scale: weight of the dynamics KL term (trains the prior).
        rep_scale: weight of the representation KL term (trains the posterior).
        reward_head: ``"twohot"`` (symlog two-hot, V3) or ``"mse"``.
        lr: Adam's learning rate.
        grad_clip: the gradient norm clip.
        decode_fraction: share of each sequence's steps (drawn anew each update) that the decoder
            reconstructs; the rest still train the dynamics, reward and continue heads. Below 1 it
            cuts the largest cost of a pixel update, the decoder's transposed convolutions.
    """

    def __init__(self, observation_space: gym.Space | dict, action_space: gym.Space | dict, size: str = "S",
                 latent: str | None = None, deter: int | None = None, stoch: int | None = None,
                 classes: int | None = None, hidden: int | None = None, layers: int | None = None,
                 cnn_depth: int | None = None, unimix: float = 0.01, free_nats: float | None = None,
                 dyn_scale: float | None = None, rep_scale: float | None = None, reward_head: str | None = None,
                 lr: float = 1e-4, grad_clip: float = 1000.0, decode_fraction: float = 1.0):
        super().__init__()
        if size not in PRESETS:
            raise ValueError(f"size must be one of {sorted(PRESETS)}, not {size!r}")
        if not 0 < decode_fraction <= 1:
            raise ValueError(f"decode_fraction must be in (0, 1], got {decode_fraction}")
        given = {"latent": latent, "deter": deter, "stoch": stoch, "classes": classes, "hidden": hidden,
                 "layers": layers, "cnn_depth": cnn_depth, "free_nats": free_nats, "dyn_scale": dyn_scale,
                 "rep_scale": rep_scale, "reward_head": reward_head}
        obs_dict = observation_space if isinstance(observation_space, dict) else space_to_dict(observation_space)
        act_dict = action_space if isinstance(action_space, dict) else space_to_dict(action_space)
        self.save_hyperparameters({"observation_space": obs_dict, "action_space": act_dict, "size": size, **given,
                                   "unimix": unimix, "lr": lr, "grad_clip": grad_clip,
                                   "decode_fraction": decode_fraction})
        self.cfg = {**DEFAULTS, **PRESETS[size], **{k: v for k, v in given.items() if v is not None}}
        cfg = self.cfg
        if cfg["latent"] not in ("categorical", "gaussian"):
            raise ValueError(f"latent must be 'categorical' or 'gaussian', not {cfg['latent']!r}")
        self._observation_space, self._action_space = space_from_dict(obs_dict), space_from_dict(act_dict)
        self.env_spec: str | None = None
        self.pixels = _is_image(self._observation_space)
        self.discrete = isinstance(self._action_space, gym.spaces.Discrete)
        _check_spaces(self._observation_space, self._action_space)
        self.action_dim = int(self._action_space.n) if self.discrete else self._action_space.shape[0]
        self.stoch_dim = cfg["stoch"] * (cfg["classes"] if cfg["latent"] == "categorical" else 1)
        stats_dim = self.stoch_dim if cfg["latent"] == "categorical" else 2 * cfg["stoch"]
        hidden, layers, deter = cfg["hidden"], cfg["layers"], cfg["deter"]

        space = self._observation_space
        if isinstance(space, gym.spaces.Dict):
            self.encoder = DictEncoder(space, hidden, layers, cfg["cnn_depth"])
            self.decoder = DictDecoder(self.feature_dim, space, hidden, layers, cfg["cnn_depth"])
        elif self.pixels:
            self.encoder = PixelEncoder(space.shape, cfg["cnn_depth"])
            self.decoder = PixelDecoder(self.feature_dim, space.shape, cfg["cnn_depth"])
        else:
            self.encoder = mlp(space.shape[0], hidden, layers)
            self.decoder = mlp(self.feature_dim, hidden, layers, space.shape[0])
        empty = obs_map(lambda shape: torch.zeros(1, *shape), obs_shapes(space))
        embed_dim = self.encoder(empty).shape[-1]
        self.img_in = mlp(self.stoch_dim + self.action_dim, hidden, 1)
        self.gru = nn.GRUCell(hidden, deter)
        self.prior_net = mlp(deter, hidden, 1, stats_dim)
        self.post_net = mlp(deter + embed_dim, hidden, 1, stats_dim)
        self.reward = ScalarHead(self.feature_dim, hidden, layers, cfg["reward_head"])
        self.cont = mlp(self.feature_dim, hidden, layers, 1)

    # ------------------------------------------------------------------ the WorldModel protocol

    @property
    def feature_dim(self) -> int:
        return self.cfg["deter"] + self.stoch_dim

    @property
    def action_space(self) -> gym.Space:
        return self._action_space

    @property
    def observation_space(self) -> gym.Space:
        return self._observation_space

    def initial_state(self, batch_size: int) -> RSSMState:
        zeros = torch.zeros(batch_size, self.cfg["deter"] + self.stoch_dim, device=self.device)
        return RSSMState(zeros[:, : self.cfg["deter"]], zeros[:, self.cfg["deter"]:])

    def observe(self, state: RSSMState, action: torch.Tensor | None, obs: torch.Tensor) -> RSSMState:
        """h advanced by the action (zeros for an episode's first observation); z sampled from
        the posterior given the observation."""
        deter = self._advance(state, self._action_or_zeros(action, len(state.deter)))
        raw = self.post_net(torch.cat([deter, self.encoder(self._prepare(obs))], -1))
        return RSSMState(deter, self._sample(raw, 1.0))

    def imagine(self, state: RSSMState, action: torch.Tensor, *, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> tuple[RSSMState, torch.Tensor, torch.Tensor]:
        """h advanced, z sampled from the prior at ``temperature`` (differentiable: straight-through
        for categoricals, reparameterised for the Gaussian); reward and continue probability of
        the new state."""
        deter = self._advance(state, self.action_vector(action))
        state = RSSMState(deter, self._sample(self.prior_net(deter), temperature, generator))
        features = self.features(state)
        return state, self.reward(features), torch.sigmoid(self.cont(features).squeeze(-1).float())

    def features(self, state: RSSMState) -> torch.Tensor:
        """[h, z]."""
        return torch.cat([state.deter, state.stoch], -1)

    def decode(self, state: RSSMState) -> "torch.Tensor | dict[str, torch.Tensor]":
        """Frames in [0, 1] (B, H, W, C) for pixels; observations for states (a dict of both for
        a Dict space)."""
        out = self.decoder(self.features(state))
        if isinstance(out, dict):
            return {key: _from_decoder(value, _is_image(self._observation_space[key])) for key, value in out.items()}
        return _from_decoder(out, self.pixels)

    # ------------------------------------------------------------------------------ internals

    def check_observations(self, obs: "torch.Tensor | dict[str, torch.Tensor]") -> None:
        shapes = obs_shapes(self._observation_space)
        given = obs_map(lambda x: tuple(x.shape), obs)
        fits = (set(given) == set(shapes) and all(_fits(given[k], shapes[k]) for k in shapes)) \
            if isinstance(shapes, dict) and isinstance(given, dict) else \
            not isinstance(shapes, dict) and not isinstance(given, dict) and _fits(given, shapes)
        if not fits:
            raise ObservationShapeError(
                f"this RSSM was built for observations of shape {shapes} (batched: (B, *shape)), got "
                f"{given}: use a model trained on this env's observations")

    def _prepare(self, obs: "torch.Tensor | dict[str, torch.Tensor]") -> "torch.Tensor | dict[str, torch.Tensor]":
        """Frames to floats around 0, states through symlog (every part of a Dict observation)."""
        obs = obs_map(lambda x: torch.as_tensor(x, device=self.device), obs)
        self.check_observations(obs)
        return obs_map(lambda x: x.float() / 255 - 0.5 if x.dtype == torch.uint8 else symlog(x.float()), obs)

    def action_vector(self, action: torch.Tensor) -> torch.Tensor:
        """Actions as the network reads them: one-hot for Discrete, floats for Box."""
        action = torch.as_tensor(action, device=self.device)
        if self.discrete:
            return F.one_hot(action.long(), self.action_dim).float()
        if action.shape[-1:] != (self.action_dim,):
            raise ValueError(f"this RSSM takes actions of shape (B, {self.action_dim}), got {tuple(action.shape)}")
        return action.float()

    def _action_or_zeros(self, action: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """Zeros stand for the action before an episode's first observation."""
        if action is None:
            return torch.zeros(batch_size, self.action_dim, device=self.device)
        return self.action_vector(action)

    def _advance(self, state: RSSMState, action_vec: torch.Tensor) -> torch.Tensor:
        """h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])."""
        return self.gru(self.img_in(torch.cat([state.stoch, action_vec], -1)), state.deter)

    def _stats(self, raw: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(log-probs (..., stoch, classes),) with unimix, or (mean, std) of the Gaussian, in float32
        (also under bf16 autocast: sampling and KL need the precision)."""
        if self.cfg["latent"] == "categorical":
            return (self._probs(raw).log(),)
        mean, std = raw.float().chunk(2, -1)
        return mean, F.softplus(std) + 0.1

    def _probs(self, raw: torch.Tensor) -> torch.Tensor:
        """Class probabilities (..., stoch, classes) of a categorical latent, with unimix, in float32."""
        probs = raw.float().unflatten(-1, (self.cfg["stoch"], self.cfg["classes"])).softmax(-1)
        return (1 - self.hparams.unimix) * probs + self.hparams.unimix / self.cfg["classes"]

    def _sample(self, raw: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.cfg["latent"] == "gaussian":
            mean, std = self._stats(raw)
            if temperature == 0:
                return mean
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            return mean + temperature * std * noise
        probs = self._probs(raw)  # sampling needs no log-probs: skipping them saves a log and an exp per step
        if temperature == 0:
            index = probs.argmax(-1)
        else:  # inverse-CDF sampling: one uniform per categorical (Gumbel-max needs one per class)
            cdf = (probs if temperature == 1 else (probs.log() / temperature).softmax(-1)).cumsum(-1)
            uniform = torch.rand((*cdf.shape[:-1], 1), generator=generator, device=cdf.device) * cdf[..., -1:]
            index = torch.searchsorted(cdf, uniform).squeeze(-1).clamp_max(self.cfg["classes"] - 1)
        sample = F.one_hot(index, self.cfg["classes"]).to(probs.dtype)
        return (sample + probs - probs.detach()).flatten(-2)  # straight-through gradients

    def _kl(self, post: tuple[torch.Tensor, ...], prior: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """KL(post || prior) per sample, summed over the latent."""
        if self.cfg["latent"] == "categorical":
            return (post[0].exp() * (post[0] - prior[0])).sum((-2, -1))
        (mean_q, std_q), (mean_p, std_p) = post, prior
        return (torch.log(std_p / std_q) + (std_q.square() + (mean_q - mean_p).square()) / (2 * std_p.square())
                - 0.5).sum(-1)

    def observe_sequence(self, obs: torch.Tensor, action: torch.Tensor) -> dict[str, Any]:
        """Filter windows (B, T+1, *obs) with the actions between them (B, T, ...): the states
        (B, T+1, ...) and the raw posterior and prior statistics at every step."""
        batch, steps = _lead(obs, 2)
        embed = self.encoder(self._prepare(obs_map(lambda x: x.flatten(0, 1), obs))).unflatten(0, (batch, steps))
        actions = self.action_vector(action)
        state = self.initial_state(batch)
        deters, stochs, posts, priors = [], [], [], []
        for t in range(steps):
            action_vec = torch.zeros_like(actions[:, 0]) if t == 0 else actions[:, t - 1]
            deter = self._advance(state, action_vec)
            post = self.post_net(torch.cat([deter, embed[:, t]], -1))
            state = RSSMState(deter, self._sample(post, 1.0))
            deters.append(deter), stochs.append(state.stoch), posts.append(post), priors.append(self.prior_net(deter))
        stack = lambda xs: torch.stack(xs, 1)  # noqa: E731
        return {"states": RSSMState(stack(deters), stack(stochs)), "post": stack(posts), "prior": stack(priors)}

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The world-model loss of a :class:`~worldkit.data.SequenceDataset` batch and its terms
        (per valid step), plus ``states``: the posterior states of every real observation but an
        episode's terminal one, after which nothing happens (detached, flattened), where Dreamer's
        imagination starts."""
        batch = {key: obs_map(lambda x: x.to(self.device), value) for key, value in batch.items()
                 if torch.is_tensor(value) or isinstance(value, dict)}
        obs, mask = batch["obs"], batch["mask"].float()
        out = self.observe_sequence(obs, batch["action"])
        obs_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)  # obs[k] is real for k <= steps
        features = self.features(out["states"])

        lead = _lead(obs, 2)
        target = obs_map(lambda x: x.unflatten(0, lead), self._prepare(obs_map(lambda x: x.flatten(0, 1), obs)))
        decoded_features, recon_mask = features, obs_mask
        steps = features.shape[1]
        if self.hparams.decode_fraction < 1 and steps > 1:  # reconstruct a random share of each sequence's steps
            count = max(1, round(self.hparams.decode_fraction * steps))
            keep = torch.rand(features.shape[0], steps, device=features.device).argsort(1)[:, :count]  # (B, count)
            rows = torch.arange(features.shape[0], device=features.device)[:, None]
            decoded_features, recon_mask = features[rows, keep], obs_mask[rows, keep]
            target = obs_map(lambda x: x[rows, keep], target)
        decoded = self.decoder(decoded_features)
        if isinstance(decoded, dict):  # one squared error per part of a Dict observation, summed
            recon = sum((decoded[k].float() - target[k]).square().flatten(2).sum(-1) for k in decoded)
        else:
            recon = (decoded.float() - target).square().flatten(2).sum(-1)
        post, prior = self._stats(out["post"]), self._stats(out["prior"])
        dyn = self._kl(tuple(x.detach() for x in post), prior).clamp_min(self.cfg["free_nats"])
        rep = self._kl(post, tuple(x.detach() for x in prior)).clamp_min(self.cfg["free_nats"])
        reward = self.reward.loss(features[:, 1:], batch["reward"].float())
        cont = F.binary_cross_entropy_with_logits(self.cont(features[:, 1:]).squeeze(-1).float(),
                                                  1.0 - batch["terminated"].float(), reduction="none")

        def mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            return (x * m).sum() / m.sum().clamp_min(1)  # a random share of steps may all be padding

        # The two KL terms have one value (they differ only in where their gradients go): log it once.
        terms = {"recon": mean(recon, recon_mask), "kl": mean(dyn, obs_mask), "reward": mean(reward, mask),
                 "continue": mean(cont, mask)}
        terms["loss"] = (terms["recon"] + terms["reward"] + terms["continue"]
                         + mean(self.cfg["dyn_scale"] * dyn + self.cfg["rep_scale"] * rep, obs_mask))
        terminal = torch.cat([torch.zeros_like(mask[:, :1]), batch["terminated"].float()], 1)
        valid = (obs_mask * (1 - terminal)).flatten().bool()
        terms["states"] = RSSMState(*(x.flatten(0, 1)[valid].detach() for x in out["states"]))
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "states"}, prog_bar=True)
        return losses["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses = self.losses(batch)
        self.log_dict({f"val/{k}": v for k, v in losses.items() if k != "states"}, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, eps=1e-8)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        nn.utils.clip_grad_norm_(self.parameters(), self.hparams.grad_clip)


class PixelEncoder(nn.Module):
    """Four stride-2 4x4 convolutions (depth, 2, 4, 8 x depth channels), flattened."""

    def __init__(self, shape: tuple[int, int, int], depth: int):
        super().__init__()
        channels = [shape[-1], depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for a, b in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.GroupNorm(1, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Flatten())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames.movedim(-1, -3))


class PixelDecoder(nn.Module):
    """The encoder mirrored with transposed convolutions; outputs frames minus 0.5, (B, H, W, C)."""

    def __init__(self, feature_dim: int, shape: tuple[int, int, int], depth: int):
        super().__init__()
        self.start = (8 * depth, shape[0] // 16, shape[1] // 16)
        self.linear = nn.Linear(feature_dim, self.start[0] * self.start[1] * self.start[2])
        channels = [8 * depth, 4 * depth, 2 * depth, depth]
        layers: list[nn.Module] = []
        for a, b in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.GroupNorm(1, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.ConvTranspose2d(depth, shape[-1], 4, 2, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lead = features.shape[:-1]
        x = self.linear(features.reshape(-1, features.shape[-1])).view(-1, *self.start)
        return self.net(x).movedim(-3, -1).unflatten(0, lead)


class DictEncoder(nn.Module):
    """The parts of a Dict observation side by side, as DreamerV3 reads them: its state vectors
    concatenated through one MLP, each image through its own CNN, the embeddings concatenated."""

    def __init__(self, space: gym.spaces.Dict, hidden: int, layers: int, depth: int):
        super().__init__()
        self.vectors = [key for key, part in space.spaces.items() if not _is_image(part)]
        self.images = [key for key, part in space.spaces.items() if _is_image(part)]
        size = sum(space[key].shape[0] for key in self.vectors)
        self.mlp = mlp(size, hidden, layers) if self.vectors else None
        self.cnns = nn.ModuleDict({key: PixelEncoder(space[key].shape, depth) for key in self.images})

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.mlp(torch.cat([obs[key] for key in self.vectors], -1))] if self.vectors else []
        return torch.cat(parts + [self.cnns[key](obs[key]) for key in self.images], -1)


class DictDecoder(nn.Module):
    """Every part of a Dict observation from the features: the state vectors from one MLP, each
    image from its own transposed CNN."""

    def __init__(self, feature_dim: int, space: gym.spaces.Dict, hidden: int, layers: int, depth: int):
        super().__init__()
        self.sizes = {key: part.shape[0] for key, part in space.spaces.items() if not _is_image(part)}
        self.mlp = mlp(feature_dim, hidden, layers, sum(self.sizes.values())) if self.sizes else None
        self.cnns = nn.ModuleDict({key: PixelDecoder(feature_dim, part.shape, depth)
                                   for key, part in space.spaces.items() if _is_image(part)})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(zip(self.sizes, self.mlp(features).split(list(self.sizes.values()), -1))) if self.sizes else {}
        return {**out, **{key: cnn(features) for key, cnn in self.cnns.items()}}


def _is_image(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3


def _fits(given: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return len(given) >= len(shape) + 1 and tuple(given[-len(shape):]) == tuple(shape)


def _lead(obs: "torch.Tensor | dict[str, torch.Tensor]", dims: int) -> tuple[int, ...]:
    """The leading (batch, time, ...) sizes of observations."""
    first = next(iter(obs.values())) if isinstance(obs, dict) else obs
    return tuple(first.shape[:dims])


def _from_decoder(out: torch.Tensor, image: bool) -> torch.Tensor:
    return (out + 0.5).clamp(0, 1) if image else symexp(out)


def _check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    parts = observation_space.spaces.values() if isinstance(observation_space, gym.spaces.Dict) else [observation_space]
    for space in parts:
        shape = space.shape
        if not isinstance(space, gym.spaces.Box) or len(shape) not in (1, 3):
            raise ValueError(f"the RSSM takes 1-D Box (state) or (H, W, C) Box (pixel) observations, or a Dict of them, "
                             f"not {observation_space}")
        if len(shape) == 3 and (shape[0] % 16 or shape[1] % 16):
            raise ValueError(f"the RSSM's CNN needs frame height and width divisible by 16, got {shape}: "
                             "make the env with size=(64, 64)")
    action_size(action_space, "the RSSM")
