"""V, M and the dream on real Sidewalk frames, and the recipe that chains them."""

import importlib.util
import json
import sys
from pathlib import Path

import imageio.v2 as imageio
import lightning as L
import numpy as np
import pytest
import torch

from worldkit.checkpoints import from_pretrained, save_pretrained
from worldkit.cli import main as cli
from worldkit.config import parse_config
from worldkit.data import TransitionDataModule, collect
from worldkit.dream.imagine import Dream, imagine
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
from worldkit.models.mdnrnn import MDNRNN, Mixture
from worldkit.models.protocol import WorldModel, repeat_state, select_state
from worldkit.models.vae import ConvVAE, FrameShapeError, latent_ranks
from worldkit.models.vae_mdn import MDNState, VAEMDNWorldModel

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(module: L.LightningModule, data: L.LightningDataModule, steps: int) -> L.Trainer:
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    return trainer


@pytest.fixture(scope="module")
def sidewalk(tmp_path_factory):
    """~1,200 real Sidewalk transitions (random policy), rendered at 30x40 to keep the tests fast."""
    return collect(tmp_path_factory.mktemp("sidewalk") / "store", "miniworld:Sidewalk", steps=1200, seed=0,
                   size=(30, 40), progress=False)


@pytest.fixture(scope="module")
def trained_vae(sidewalk):
    torch.manual_seed(0)
    data = TransitionDataModule(sidewalk, batch_size=32, val_fraction=0.2, seed=0)
    vae = ConvVAE((30, 40, 3), latent_dim=16, channels=(16, 32, 32), kl_warmup_steps=80, lr=2e-3,
                  diagnostics_every=10)
    trainer = fit(vae, data, 200)
    vae.eval()
    return vae, data, trainer


def test_vae_reconstructs_held_out_frames_far_better_than_the_mean_frame(trained_vae):
    vae, data, trainer = trained_vae
    train_frames = torch.stack([data.train_dataset[i]["obs"] for i in range(0, len(data.train_dataset), 5)])
    held_out = torch.stack([data.val_dataset[i]["obs"] for i in range(len(data.val_dataset))])
    target = held_out.float() / 255
    mean_frame_error = (target - train_frames.float().mean(0) / 255).pow(2).mean()
    with torch.no_grad():
        error = (vae.reconstruct(held_out) - target).pow(2).mean()
    assert error < 0.5 * mean_frame_error, (error, mean_frame_error)
    logged = trainer.callback_metrics
    for key in ("train/recon", "train/kl", "diag/latent_effective_rank", "diag/grad_norm_recon",
                "diag/grad_norm_kl", "diag/grad_cosine_recon_kl"):
        assert torch.isfinite(logged[key]), key
    assert logged["diag/latent_effective_rank"] > 1.5  # codes spread over more than one direction


def test_mdnrnn_mixture_beats_a_single_gaussian_on_encoded_sequences(trained_vae, sidewalk):
    vae, _, _ = trained_vae
    latents = LatentEpisodes.encode(vae, sidewalk, batch_size=256, progress=False)
    assert len(latents) == len(sidewalk) and latents.episodes[0]["mu"].shape == (sidewalk.lengths[0] + 1, 16)
    held_out_nll = {}
    for k in (5, 1):
        torch.manual_seed(0)
        data = LatentSequenceDataModule(latents, 16, batch_size=16, val_fraction=0.25, seed=0)
        mdnrnn = MDNRNN(latent_dim=16, hidden_dim=64, num_mixtures=k, repulsion_weight=0.1, lr=3e-3)
        trainer = fit(mdnrnn, data, 200)
        batch = next(iter(torch.utils.data.DataLoader(data.val_dataloader().dataset, batch_size=1000)))
        with torch.no_grad():
            held_out_nll[k] = mdnrnn.eval().losses(batch)["nll"].item()
        if k == 5:
            assert 0 < trainer.callback_metrics["train/mixture_entropy"] < np.log(5) + 1e-4
            assert torch.isfinite(trainer.callback_metrics["train/repulsion"])
    train_z = np.concatenate([latents.episodes[i]["mu"][1:] for i in data.train_episodes])
    unconditional = torch.distributions.Normal(torch.tensor(train_z.mean(0)), torch.tensor(train_z.std(0)))
    static_nll = -unconditional.log_prob(batch["mu"][:, 1:][batch["mask"]]).sum(-1).mean().item()
    assert held_out_nll[1] < static_nll - 2, (held_out_nll, static_nll)  # M learned the dynamics at all
    assert held_out_nll[5] < held_out_nll[1] - 2, (held_out_nll, static_nll)  # nats per step


def test_mixture_samples_follow_the_mixture_and_temperature():
    mixture = Mixture(logit_pi=torch.log(torch.tensor([[0.25, 0.75]])), mu=torch.tensor([[-3.0, 3.0]]),
                      log_sigma=torch.log(torch.tensor([[0.5, 0.5]])))
    wide = mixture._replace(**{k: v.expand(50_000, 1, 2) for k, v in mixture._asdict().items()})
    samples = wide.sample(1.0, torch.Generator().manual_seed(0))[:, 0]
    assert abs((samples > 0).float().mean().item() - 0.75) < 0.01
    assert abs(samples[samples > 0].std().item() - 0.5) < 0.02
    cold = wide.sample(0.25, torch.Generator().manual_seed(0))[:, 0]
    assert (cold > 0).float().mean() > 0.95  # weights sharpen towards the likelier component
    assert abs(cold[cold > 0].std().item() - 0.25) < 0.02  # sigma * sqrt(tau)
    assert (wide.sample(0.0)[:, 0] == 3.0).all()


def test_outcome_is_read_from_where_the_step_leads_and_stays_in_the_range_seen():
    """Episodes of random length end where the last frame shows it: done and reward are read from
    that next latent, so the ending steps are recognised (a head on h_t alone could only learn the
    average hazard); the reward for ongoing steps learns 0, and outside training neither reward
    promises more than its kind of step ever paid."""
    rng = np.random.default_rng(0)
    episodes = []
    for length in rng.integers(8, 20, 60):
        success = rng.random() < 0.5
        mu = np.cumsum(rng.normal(0, 0.3, (length + 1, 4)), 0).clip(-2, 2).astype(np.float32)
        mu[-1, 0] = 3.0 if success else -3.0  # the last frame shows how the episode ended
        episodes.append({"mu": mu, "logvar": np.zeros_like(mu), "action": rng.integers(0, 3, length),
                         "reward": np.where(np.arange(length) == length - 1, 0.9 * success, 0).astype(np.float32),
                         "terminated": np.arange(length) == length - 1})
    data = LatentSequenceDataModule(LatentEpisodes(episodes, "miniworld:Sidewalk"), 24, batch_size=16, val_fraction=0)
    torch.manual_seed(0)
    mdnrnn = MDNRNN(latent_dim=4, hidden_dim=32, num_mixtures=1, lr=3e-3)
    fit(mdnrnn, data, 150)
    torch.testing.assert_close(mdnrnn.reward_range, torch.tensor([[0.0, 0.0], [0.0, 0.9]]))
    batch = next(iter(data.train_dataloader()))
    with torch.no_grad():
        _, h, _ = mdnrnn.eval()(batch["mu"][:, :-1], batch["action"])
        outcome = mdnrnn.outcome(h, batch["mu"][:, 1:])
    ongoing, ends = batch["mask"] & ~batch["terminated"], batch["terminated"]
    done = torch.sigmoid(outcome.done_logit)
    assert done[ends].mean() > 0.5 and done[ongoing].mean() < 0.05  # the average hazard is about 0.07
    assert outcome.reward_if_continues[ongoing].abs().max() == 0  # clamped to [0, 0]
    assert outcome.expected_reward()[ongoing].mean() < 0.02  # no reward for merely staying alive
    with torch.no_grad():
        mdnrnn.outcome_head[-1].bias[:2] = 100.0  # a head gone wild, as far out of the data
        wild = mdnrnn.outcome(torch.zeros(1, 32), torch.zeros(1, 4))
    assert wild.reward_if_continues.item() == 0.0 and wild.reward_if_ends.item() == pytest.approx(0.9)
    assert mdnrnn.train().outcome(torch.zeros(1, 32), torch.zeros(1, 4)).reward_if_ends.item() > 50  # raw in training


def test_a_vae_checkpoint_refuses_frames_of_another_shape(tmp_path):
    vae = ConvVAE(channels=(8, 16))
    loaded = ConvVAE.from_pretrained(save_pretrained(vae, tmp_path / "vae"))
    with pytest.raises(FrameShapeError, match=r"\(60, 80, 3\).*\(64, 64, 3\)"):
        loaded.embed(torch.zeros(2, 64, 64, 3, dtype=torch.uint8))
    world_model = VAEMDNWorldModel.compose(loaded, MDNRNN(latent_dim=32, hidden_dim=8))
    with pytest.raises(FrameShapeError, match=r"\(60, 80, 3\)"):
        world_model.observe(world_model.initial_state(1), None, torch.zeros(1, 84, 84, 3, dtype=torch.uint8))


def test_vae_with_skips_decodes_from_z_alone():
    vae = ConvVAE(frame_shape=(30, 40, 3), latent_dim=4, channels=(4, 8, 8), skips=True)
    frames = torch.randint(0, 256, (3, 30, 40, 3), dtype=torch.uint8)
    z = vae.embed(frames)
    assert vae.decode(z).shape == (3, 30, 40, 3)
    assert not torch.allclose(vae.reconstruct(frames), vae.decode(z))  # the skips carry more than z
    assert latent_ranks(torch.randn(100, 4) @ torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0])))["latent_rank"] == 2


def test_world_model_keeps_the_protocol_and_survives_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = VAEMDNWorldModel.compose(ConvVAE(channels=(8, 16), latent_dim=6), MDNRNN(latent_dim=6, hidden_dim=10))
    model.env_spec = "miniworld:Sidewalk"
    assert isinstance(model, WorldModel) and model.feature_dim == 16 and model.action_space.n == 3
    loaded = from_pretrained(save_pretrained(model, tmp_path / "wm"))
    assert loaded.env_spec == "miniworld:Sidewalk"
    frames = torch.randint(0, 256, (4, 60, 80, 3), dtype=torch.uint8)
    state = loaded.observe(loaded.initial_state(4), None, frames)
    assert torch.equal(state.h, torch.zeros(4, 10))  # nothing has been read yet
    stepped = loaded.observe(state, torch.tensor([0, 1, 2, 2]), frames)
    assert not torch.equal(stepped.h, state.h)
    action = torch.tensor([2, 2, 0, 1])
    dream = [m.imagine(state, action, temperature=0.0) for m in (model, loaded)]
    for a, b in zip(dream[0][0] + dream[0][1:], dream[1][0] + dream[1][1:]):
        torch.testing.assert_close(a, b)
    next_state, reward, continue_prob = dream[0]
    assert next_state.z.shape == (4, 6) and reward.shape == (4,) and ((0 < continue_prob) & (continue_prob < 1)).all()
    hot = [model.imagine(state, action, generator=torch.Generator().manual_seed(s))[0].z for s in (1, 2)]
    assert not torch.equal(*hot)
    assert model.decode(next_state).shape == (4, 60, 80, 3) and model.features(next_state).shape == (4, 16)


def test_an_ensemble_m_dreams_with_its_members_and_halts_where_they_disagree_beyond_real_data(tmp_path):
    torch.manual_seed(0)
    vae, members = ConvVAE(channels=(8,), latent_dim=4), [MDNRNN(latent_dim=4, hidden_dim=6) for _ in range(3)]
    single, ensemble = VAEMDNWorldModel.compose(vae, members[0]), VAEMDNWorldModel.compose(vae, *members)
    assert set(single.state_dict()) == {k for k in ensemble.state_dict() if not k.startswith(("others.", "halt"))}
    frames = torch.randint(0, 256, (2, 60, 80, 3), dtype=torch.uint8)
    states = [m.observe(m.observe(m.initial_state(2), None, frames), torch.tensor([0, 2]), frames)
              for m in (single, ensemble)]
    torch.testing.assert_close(single.features(states[0]), ensemble.features(states[1]))  # the lead's h alone
    assert ensemble.feature_dim == single.feature_dim == 10 and states[1].h.shape == (2, 18)
    episodes = [{"mu": np.random.randn(n + 1, 4).astype(np.float32), "logvar": np.zeros((n + 1, 4), np.float32),
                 "action": np.random.randint(0, 3, n), "reward": np.zeros(n, np.float32), "terminated": np.zeros(n, bool)}
                for n in (5, 9, 3)]
    halt = ensemble.calibrate_halt(LatentEpisodes(episodes, "miniworld:Sidewalk"), quantile=1.0)
    for episode in episodes:  # no real step lies beyond the largest spread real steps show
        state = ensemble.initial_state(1)._replace(z=torch.as_tensor(episode["mu"][:1]))
        for t, action in enumerate(episode["action"]):
            h, c = ensemble._advance(state, torch.as_tensor([action]))
            assert ensemble.spread(h).item() <= halt + 1e-6
            state = MDNState(torch.as_tensor(episode["mu"][t + 1:t + 2]), h, c)
    far = ensemble.initial_state(64)._replace(z=50 * torch.randn(64, 4))  # where no real episode went
    actions = torch.zeros(64, dtype=torch.long)
    _, reward, continues = ensemble.imagine(far, actions, generator=torch.Generator().manual_seed(0))
    halted = ensemble.spread(ensemble._advance(far, actions)[0]) > halt
    assert halted.any() and (reward[halted] == 0).all() and (continues[halted] == 0).all()
    assert (continues[~halted] > 0).all()
    loaded = from_pretrained(save_pretrained(ensemble, tmp_path / "ensemble"))
    assert len(loaded.members) == 3 and loaded.halt_above.item() == halt
    for a, b in zip(*(m.imagine(far, actions, generator=torch.Generator().manual_seed(1)) for m in (ensemble, loaded))):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="ensemble"):
        single.calibrate_halt(LatentEpisodes(episodes, "miniworld:Sidewalk"))


def test_rollout_weights_rewards_by_the_chance_the_episode_is_still_running():
    torch.manual_seed(0)
    model = VAEMDNWorldModel.compose(ConvVAE(channels=(8,), latent_dim=3), MDNRNN(latent_dim=3, hidden_dim=5))
    start = model.initial_state(2)._replace(z=torch.randn(2, 3))
    with torch.no_grad():
        rollout = imagine(model, start, lambda f: torch.zeros(len(f), dtype=torch.long), 4,
                                  temperature=0.0, keep_states=True)
    assert rollout.rewards.shape == (4, 2) and len(rollout.states) == 5
    alive = torch.cat([torch.ones(1, 2), rollout.continues[:-1].cumprod(0)])
    torch.testing.assert_close(rollout.alive, alive)
    discount = 0.9 ** torch.arange(4.0)[:, None]
    torch.testing.assert_close(rollout.returns(0.9, 0.1), (discount * alive * (rollout.rewards - 0.1)).sum(0))
    hand = Dream(torch.zeros(2, 1), torch.tensor([[1.0], [1.0]]), torch.tensor([[0.5], [0.5]]),
                        torch.tensor([[1.0], [0.5]]), None)
    assert hand.returns().item() == 1.5 and hand.expected_length().item() == 1.5
    doubled = repeat_state(start, 3)
    assert doubled.z.shape == (6, 3) and torch.equal(select_state(doubled, torch.tensor([2])).z, start.z[:1])
    assert isinstance(doubled, MDNState)


def test_latent_episodes_round_trip_and_windows(tmp_path):
    episodes = [{"mu": np.random.randn(t + 1, 2).astype(np.float32), "logvar": np.zeros((t + 1, 2), np.float32),
                 "action": np.arange(t) % 3, "reward": np.zeros(t, np.float32),
                 "terminated": np.arange(t) == t - 1} for t in (5, 12)]
    loaded = LatentEpisodes.load(LatentEpisodes(episodes, "miniworld:Sidewalk").save(tmp_path / "z.npz"))
    assert loaded.env_spec == "miniworld:Sidewalk" and len(loaded) == 2
    for a, b in zip(episodes, loaded.episodes):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    windows = LatentSequenceDataModule(loaded, 8, batch_size=4, val_fraction=0.0).train_dataloader().dataset
    assert len(windows) == 3  # 5 steps -> 1 window, 12 steps -> 2
    masks = sorted(int(windows[i]["mask"].sum()) for i in range(3))
    assert masks == [4, 5, 8]
    torch.testing.assert_close(loaded.first_latents(), torch.tensor(np.stack([e["mu"][0] for e in episodes])))


def run_recipe(run_dir: Path, *extra: str) -> list[dict]:
    """The recipe's main() in this process (imports are paid once), on a tiny budget."""
    spec = importlib.util.spec_from_file_location("miniworld_cmaes", ROOT / "recipes" / "miniworld_cmaes.py")
    recipe = sys.modules.setdefault("miniworld_cmaes", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(recipe)
    flags = [f"--run_dir={run_dir}", "--wandb_mode=disabled", "--progress=False", "--collect_episodes=3",
             "--frame_size", "30", "40", "--latent_dim=8", "--vae_channels", "8", "16", "--vae_trainer.max_steps=3",
             "--vae_trainer.val_check_interval=3", "--hidden_dim=16", "--mdn_trainer.max_steps=3",
             "--mdn_trainer.val_check_interval=3", "--cmaes.population=4", "--cmaes.generations=2",
             "--cmaes.rollouts=2", "--cmaes.horizon=10", "--eval_episodes=2", "--eval_workers=1",
             "--dream_eval_rollouts=8", "--rounds=2", "--round_episodes=2", "--round_mdn_steps=2", "--select_episodes=2", *extra]
    return recipe.main(parse_config(recipe.Config, flags))


def test_recipe_runs_end_to_end_writes_every_artifact_and_resumes(tmp_path, capsys):
    [result] = run_recipe(tmp_path)
    run = tmp_path / "Sidewalk-seed0"
    selection = json.loads((run / "selection.json").read_text())
    base = run / ("." if (run / "round1").exists() else "candidate1")  # the candidate M the rounds went on from
    assert selection["stages"][str(base.relative_to(run))]["success_rate"] == max(
        selection["stages"][name]["success_rate"] for name in (".", "candidate1"))
    scores = {name: (selection["stages"][name]["success_rate"], selection["stages"][name]["mean_return"])
              for name in (str(base.relative_to(run)), str((base / "round1").relative_to(run)))}
    went_on_from = json.loads((base / "round2" / "round.json").read_text())["goes_on_from"]
    assert scores[went_on_from] == max(scores.values())  # round 2 goes on from the better of the two before it
    stage_files = ["latents.npz", "cmaes.jsonl", "cmaes_curve.png",
                   *(f"checkpoints/{n}/model.safetensors" for n in ("mdnrnn", "world_model", "controller"))]
    artifacts = ["recon_grid.png", "real_vs_dream.gif", "evaluation.json", "selection.json",
                 "checkpoints/vae/model.safetensors", *stage_files,
                 *(f"candidate1/{name}" for name in stage_files if name != "latents.npz"),  # the first episodes'
                 *(str((base / f"round{i}" / name).relative_to(run)) for name in stage_files for i in (1, 2))]
    for name in artifacts:
        assert (run / name).exists(), name
    first, other = (MDNRNN.from_pretrained(run / stage / "checkpoints" / "mdnrnn") for stage in (".", "candidate1"))
    assert not torch.equal(first.head.weight, other.head.weight)  # each candidate M from its own weights
    assert json.loads((run / "evaluation.json").read_text()) == result
    assert set(selection["stages"]) == {".", "candidate1", *(str((base / f"round{i}").relative_to(run)) for i in (1, 2))}
    assert selection["episodes"] == 2
    assert selection["escape"] == result["escape"] == 8  # the controllers escape loops in the real env
    assert selection["explore"] == result["explore"] == 0.0
    assert result["controller"] == str(run / selection["chosen"] / "checkpoints" / "controller")
    assert len(LatentEpisodes.load(base / "round1" / "latents.npz")) == 2  # the controller's own episodes
    [logged] = [json.loads(line) for line in (run / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert logged["eval/success_rate"] == result["real"]["success_rate"]  # what a sweep reads
    assert result["real"]["episodes"] == 2 and 0 <= result["real"]["success_rate"] <= 1
    assert result["dream"]["rollouts"] == 8 and result["collected_data"]["episodes"] == 3 + 2 + 2  # and the rounds'
    assert len((run / "cmaes.jsonl").read_text().splitlines()) == 2
    assert imageio.imread(run / "recon_grid.png").shape == (2 * 30 * 3, 8 * 40 * 3, 3)
    cli(["eval", str(run), "--episodes=2", "--seed=7"])  # the chosen stage's V, M and controller, acting again
    assert "return over 2 episodes of miniworld:Sidewalk (seeds 7-8)" in capsys.readouterr().out
    written = {name: (run / name).stat().st_mtime_ns for name in artifacts}
    assert run_recipe(tmp_path) == [result]
    assert {name: (run / name).stat().st_mtime_ns for name in artifacts} == written  # every stage skipped
    [refloored] = run_recipe(tmp_path, "--forward_probability=0.8")  # the floor draws differently: score again
    assert refloored["explore_actions"] == pytest.approx([0.1, 0.1, 0.8])
    assert json.loads((run / "selection.json").read_text())["explore_actions"] == pytest.approx([0.1, 0.1, 0.8])
    assert (run / "cmaes.jsonl").stat().st_mtime_ns == written["cmaes.jsonl"]  # and trains nothing again
    [escaping] = run_recipe(tmp_path, "--forward_probability=0.8", "--act_escape=4")  # loops escaped: score again
    assert escaping["escape"] == json.loads((run / "selection.json").read_text())["escape"] == 4
    assert len(escaping["real"]["escapes"]) == 2 and (run / "cmaes.jsonl").stat().st_mtime_ns == written["cmaes.jsonl"]


def test_recipe_reuses_the_shipped_v_and_m_and_refuses_frames_they_cannot_read(tmp_path):
    with pytest.raises(ValueError, match="drop --pretrained"):
        run_recipe(tmp_path / "small", "--pretrained=True")
    with pytest.raises(SystemExit):
        run_recipe(tmp_path / "small", "--pretrained=True", "--m_candidates=2")  # 30x40 frames: the shipped V reads 60x80
    [result] = run_recipe(tmp_path / "shipped", "--pretrained=True", "--frame_size", "60", "80", "--latent_dim=32",
                          "--rounds=0")
    run = tmp_path / "shipped" / "Sidewalk-seed0"
    assert not (run / "vae").exists() and not (run / "mdnrnn").exists()  # nothing trained
    assert not (run / "candidate1").exists()  # the shipped M is the only candidate
    torch.testing.assert_close(MDNRNN.from_pretrained(run / "checkpoints" / "mdnrnn").state_dict(),
                               MDNRNN.from_pretrained("sidewalk-mdnrnn").state_dict())
    assert result["real"]["episodes"] == 2


def test_recipe_trains_an_ensemble_m_whose_dreams_halt_and_resumes_each_member_in_rounds(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_recipe(tmp_path, "--members=2", "--pretrained=True")
    assert "shipped M" in capsys.readouterr().err
    [result] = run_recipe(tmp_path, "--members=2", "--m_candidates=1")
    run = tmp_path / "Sidewalk-seed0"
    for stage in (run, run / "round1"):
        world_model = VAEMDNWorldModel.from_pretrained(stage / "checkpoints" / "world_model")
        assert len(world_model.members) == 2 and np.isfinite(world_model.halt_above.item())
        lead, other = (MDNRNN.from_pretrained(stage / "checkpoints" / n) for n in ("mdnrnn", "mdnrnn1"))
        torch.testing.assert_close(world_model.others[0].state_dict(), other.state_dict())
        assert not torch.equal(lead.head.weight, other.head.weight)  # each member from its own weights
    first, later = (MDNRNN.from_pretrained(s / "checkpoints" / "mdnrnn1") for s in (run, run / "round1"))
    assert not torch.equal(first.head.weight, later.head.weight)  # the round trained the member further
    assert result["real"]["episodes"] == 2
