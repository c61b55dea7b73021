"""The RSSM on real dm-control data: it learns, round-trips through a checkpoint, refuses bad input."""

import gymnasium as gym
import lightning as L
import numpy as np
import pytest
import torch

from worldkit.checkpoints import save_pretrained
from worldkit.data import SequenceDataModule, collect
from worldkit.models.heads import ScalarHead, symexp, symlog
from worldkit.models.protocol import WorldModel
from worldkit.models.rssm import PRESETS, RSSM, ObservationShapeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def walker_store(tmp_path_factory):
    """Three real dm-control walker-walk episodes (3,000 transitions) under random actions."""
    return collect(tmp_path_factory.mktemp("walker") / "store", "dmc:walker-walk", episodes=3, seed=0, progress=False)


def held_out_loss(model: RSSM, data: SequenceDataModule) -> dict[str, float]:
    batch = next(iter(torch.utils.data.DataLoader(data.val_dataset, batch_size=32)))
    torch.manual_seed(0)
    with torch.no_grad():
        return {k: v.item() for k, v in model.losses(batch).items() if k != "states"}


@pytest.mark.parametrize("latent", ["categorical", "gaussian"])
def test_rssm_loss_falls_on_real_dm_control_data(walker_store, latent):
    torch.manual_seed(0)
    data = SequenceDataModule(walker_store, 32, batch_size=16, val_fraction=0.34, seed=0)
    data.setup()
    model = RSSM(data.observation_space, data.action_space, size="tiny", latent=latent, lr=3e-3)
    before = held_out_loss(model, data)
    trainer = L.Trainer(max_steps=120, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    after = held_out_loss(model.eval(), data)
    assert after["recon"] < 0.5 * before["recon"], (before, after)
    assert after["loss"] < 0.6 * before["loss"], (before, after)
    assert np.isfinite(trainer.callback_metrics["train/kl"].item())
    assert isinstance(model, WorldModel)


def test_bf16_autocast_keeps_the_losses_and_the_distributions_in_float32(walker_store):
    data = SequenceDataModule(walker_store, 32, batch_size=16, val_fraction=0.34, seed=0)
    data.setup()
    model = RSSM(data.observation_space, data.action_space, size="XS")
    batch = next(iter(torch.utils.data.DataLoader(data.val_dataset, batch_size=16)))
    losses = {}
    for precision in ("32", "bf16"):
        torch.manual_seed(0)
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            losses[precision] = model.losses(batch)
            starts = losses[precision]["states"]
            state, reward, cont = model.imagine(starts, torch.zeros(len(starts.deter), 6))
        assert reward.dtype == cont.dtype == state.stoch.dtype == torch.float32
    for term in ("recon", "kl", "reward", "continue", "loss"):
        assert losses["bf16"][term].dtype == torch.float32
        assert losses["bf16"][term].item() == pytest.approx(losses["32"][term].item(), rel=0.02), term


def test_imagination_starts_at_every_real_observation_but_an_episodes_terminal_one():
    model = RSSM(gym.spaces.Box(-1, 1, (24,)), gym.spaces.Box(-1, 1, (6,)), size="tiny")
    batch = {"obs": torch.randn(2, 5, 24), "action": torch.zeros(2, 4, 6), "reward": torch.zeros(2, 4),
             "terminated": torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0]]),  # the first window ends at obs[2]
             "mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])}           # and is padded after it
    torch.manual_seed(0)
    starts = model.losses(batch)["states"]
    torch.manual_seed(0)  # the same draws again
    every = model.observe_sequence(batch["obs"], batch["action"])["states"]
    # obs[0] and obs[1] of the first window, all five of the second
    torch.testing.assert_close(starts.deter, torch.cat([every.deter[0, :2], every.deter[1]]))


def test_checkpoint_round_trips_bit_exactly(tmp_path, walker_store):
    space = walker_store.observation_space
    model = RSSM(space, walker_store.action_space, size="tiny", reward_head="mse")
    with torch.no_grad():  # non-zero everywhere, so a lost tensor would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.env_spec = walker_store.env_spec
    loaded = RSSM.from_pretrained(save_pretrained(model, tmp_path / "rssm"))
    assert loaded.env_spec == "dmc:walker-walk" and loaded.cfg == model.cfg
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    obs = torch.as_tensor(walker_store.episode(0)["obs"][:4])
    outputs = []
    for m in (model.eval(), loaded):
        torch.manual_seed(1)
        with torch.no_grad():
            state = m.observe(m.initial_state(4), None, obs)
            state, reward, cont = m.imagine(state, torch.zeros(4, 6), generator=torch.Generator().manual_seed(2))
        outputs.append(torch.cat([m.features(state), reward[:, None], cont[:, None], m.decode(state)], -1))
    assert torch.equal(*outputs)


FRAMES = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)


def frame_batch() -> dict[str, torch.Tensor]:
    """Two sequences of 5 random 64x64 frames and 4 Discrete(3) actions."""
    return {"obs": torch.randint(0, 256, (2, 5, 64, 64, 3), dtype=torch.uint8),
            "action": torch.randint(0, 3, (2, 4)), "reward": torch.rand(2, 4),
            "terminated": torch.zeros(2, 4, dtype=torch.bool), "mask": torch.ones(2, 4, dtype=torch.bool)}


def test_pixel_rssm_trains_and_decodes_frames():
    torch.manual_seed(0)
    model = RSSM(FRAMES, gym.spaces.Discrete(3), size="tiny")
    batch = frame_batch()
    optimizer = model.configure_optimizers()
    losses = []
    for _ in range(3):
        loss = model.losses(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    state, _, _ = model.imagine(model.observe(model.initial_state(2), None, batch["obs"][:, 0]), torch.tensor([0, 2]))
    pictures = model.decode(state)
    assert pictures.shape == (2, 64, 64, 3) and 0 <= pictures.min() and pictures.max() <= 1


def test_the_decoder_reconstructs_only_the_share_of_steps_it_is_given():
    torch.manual_seed(0)
    model = RSSM(FRAMES, gym.spaces.Discrete(3), size="tiny", decode_fraction=0.4)
    decoded_steps = []
    model.decoder.register_forward_hook(lambda module, args, out: decoded_steps.append(tuple(args[0].shape[:2])))
    losses = model.losses(frame_batch())
    assert decoded_steps == [(2, 2)]  # 40% of 5 steps, in both sequences
    losses["loss"].backward()
    assert torch.isfinite(losses["recon"]) and model.decoder.linear.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"decode_fraction must be in \(0, 1\]"):
        RSSM(FRAMES, gym.spaces.Discrete(3), size="tiny", decode_fraction=0.0)


def test_bad_input_gets_clear_errors():
    state_space, actions = gym.spaces.Box(-np.inf, np.inf, (24,), np.float32), gym.spaces.Box(-1, 1, (6,))
    model = RSSM(state_space, actions, size="tiny")
    with pytest.raises(ObservationShapeError, match=r"\(24,\).*\(3, 17\)"):
        model.observe(model.initial_state(3), None, torch.zeros(3, 17))
    with pytest.raises(ValueError, match=r"actions of shape \(B, 6\)"):
        model.imagine(model.initial_state(3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="divisible by 16"):
        RSSM(gym.spaces.Box(0, 255, (30, 40, 3), np.uint8), actions, size="tiny")
    with pytest.raises(ValueError, match="size must be one of"):
        RSSM(state_space, actions, size="huge")
    with pytest.raises(ValueError, match="latent must be"):
        RSSM(state_space, actions, size="tiny", latent="beta")


def test_presets_and_temperature():
    actions = gym.spaces.Box(-1, 1, (6,))
    v1 = RSSM(gym.spaces.Box(-np.inf, np.inf, (24,), np.float32), actions, size="v1")
    assert v1.cfg["latent"] == "gaussian" and v1.feature_dim == 200 + 30
    assert {"tiny", "XS", "S", "M", "L", "XL"} <= set(PRESETS)
    model = RSSM(gym.spaces.Box(-np.inf, np.inf, (24,), np.float32), actions, size="tiny")
    start = model.observe(model.initial_state(64), None, torch.randn(64, 24))
    with torch.no_grad():
        cold = [model.imagine(start, torch.zeros(64, 6), temperature=0.0)[0].stoch for _ in range(2)]
        warm = [model.imagine(start, torch.zeros(64, 6), temperature=1.0)[0].stoch for _ in range(2)]
    assert torch.equal(*cold) and not torch.equal(*warm)  # temperature 0 is the likeliest step


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_categorical_latents_are_drawn_from_their_distribution(temperature):
    model = RSSM(gym.spaces.Box(-np.inf, np.inf, (24,), np.float32), gym.spaces.Box(-1, 1, (6,)), size="tiny")
    logits = torch.tensor([2.0, 0.0, -1.0, 1.0, -3.0, 0.5, 0.0, -0.5])  # 8 classes; every categorical alike
    raw = logits.repeat(20_000, model.cfg["stoch"])
    with torch.no_grad():
        sample = model._sample(raw, temperature, torch.Generator().manual_seed(0)).unflatten(-1, (-1, 8))
    (logp,) = model._stats(logits.repeat(1, model.cfg["stoch"]))  # with unimix
    expected = (logp[0, 0] / temperature).softmax(-1)
    assert torch.allclose(sample.mean((0, 1)), expected, atol=0.005), (sample.mean((0, 1)), expected)


def test_two_hot_head_learns_a_value_and_is_pulled_halfway_in_symlog_space():
    torch.manual_seed(0)
    x = torch.ones(32, 1)
    for target, pull_towards, expected in [(37.5, None, 37.5), (-0.3, None, -0.3),
                                           (37.5, 0.0, float(symexp(symlog(torch.tensor(37.5)) / 2)))]:
        head = ScalarHead(1, 8, 1, "twohot")
        optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
        goal = torch.full((32,), target)
        pull = None if pull_towards is None else torch.full((32,), pull_towards)
        for _ in range(300):
            loss = head.loss(x, goal, pull, 1.0).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert abs(head(x[:1]).item() - expected) < 0.02 * max(1.0, abs(expected)), (target, pull_towards)
    torch.testing.assert_close(symexp(symlog(torch.tensor([-1e4, -1.0, 0.0, 5.0]))), torch.tensor([-1e4, -1.0, 0.0, 5.0]))
