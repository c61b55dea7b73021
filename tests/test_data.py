"""worldkit.data: crash-safe episode store, resumable collection, lazy datasets, episode split."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldkit.data import (
    BlockShuffleSampler,
    EpisodeStore,
    InvalidEpisodeError,
    SequenceDataModule,
    SequenceDataset,
    StoreLockedError,
    StoreMismatchError,
    TransitionDataModule,
    TransitionDataset,
    collect,
    read_episode,
    split_episodes,
)
from worldkit.data.batch_of_one import BatchOfOne
from worldkit.data.cache import EpisodeCache
from worldkit.data.episode import validate_episode
from worldkit.data.writer import BackgroundWriter
from worldkit.envs import make_env, make_vector_env
from worldkit.files import temp_path


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    """A small real store (CartPole: Discrete actions, short episodes of varied length)."""
    return collect(tmp_path_factory.mktemp("cartpole") / "store", "CartPole-v1", steps=2000, progress=False)


def _digests(store: EpisodeStore) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in store.episode_paths}


KILLED_COLLECTOR = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from worldkit.data import collect

    def slow_random(obs):
        '''Uniform random actions, 1 ms late: a collection slow enough to kill mid-way.'''
        time.sleep(0.001)
        return np.random.uniform(-1, 1, size=(len(obs), 6)).astype(np.float32)

    collect(sys.argv[1], "Walker2d-v4", steps=3000, policy=slow_random, progress=False)
    """
)


def test_a_killed_collection_leaves_whole_episodes_and_resumes_to_the_total(tmp_path):
    path = tmp_path / "walker"
    command = [sys.executable, "-c", KILLED_COLLECTOR, str(path)]
    writer = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(path.glob("ep-*.npz"))) < 10:
        assert writer.poll() is None, writer.stderr.read().decode()
        assert time.monotonic() < deadline, "the collector wrote no episodes in 60 s"
        time.sleep(0.02)
    with pytest.raises(StoreLockedError):  # one writer at a time
        collect(path, "Walker2d-v4", steps=3000, progress=False)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stderr.close()

    store = EpisodeStore(path)
    assert 0 < store.num_steps < 3000, "killed mid-way"
    for i, episode in enumerate(store):
        validate_episode(episode, store.observation_space, store.action_space)
        assert len(episode["action"]) == store.lengths[i]
    before = _digests(store)
    stray = temp_path(path / "ep-999999-T0001.npz")  # what a writer killed mid-file leaves
    stray.write_bytes(b"PK\x03\x04 torn")

    subprocess.run(command, check=True, timeout=120)

    store = EpisodeStore(path)
    assert not stray.exists(), "temp files of dead writers are cleaned on open"
    assert store.num_steps >= 3000 and store.num_steps - store.lengths[-1] < 3000, "stops right past the total"
    names = [p.name for p in store.episode_paths]
    assert [int(n[3:9]) for n in names] == list(range(len(store))), "episode indices continue without a gap"
    after = _digests(store)
    assert {name: after[name] for name in before} == before, "episodes written before the kill are untouched"
    assert len(after) > len(before)
    for episode in store:
        validate_episode(episode, store.observation_space, store.action_space)
    assert len(store.metadata["collections"]) == 2
    assert store.metadata["collections"][1]["episodes_before"] == len(before)
    assert store.metadata["collections"][1]["policy"]["name"] == "__main__.slow_random"


def test_sidewalk_pixels_round_trip_as_compressed_uint8_hwc(tmp_path):
    store = collect(tmp_path / "sidewalk", "miniworld:Sidewalk", steps=300, progress=False)
    assert store.env_spec == "miniworld:Sidewalk" and store.num_steps >= 300
    episode = store.episode(0)
    assert episode["obs"].dtype == np.uint8 and episode["obs"].shape == (store.lengths[0] + 1, 60, 80, 3)
    assert episode["obs"].std() > 0, "frames are rendered, not blank"
    assert store.action_space == gym.spaces.Discrete(3) and episode["action"].dtype == np.int64
    with zipfile.ZipFile(store.episode_paths[0]) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    total_raw = sum(e["obs"].nbytes for e in store)
    assert sum(p.stat().st_size for p in store.episode_paths) < 0.6 * total_raw

    copy = EpisodeStore.create(tmp_path / "copy", "MiniWorld-Sidewalk-v0", store.observation_space, store.action_space)
    for original, again in zip(store, (read_episode(copy.add(e)) for e in store)):
        assert all(np.array_equal(original[k], again[k]) and original[k].dtype == again[k].dtype for k in original)

    window = SequenceDataset(store, 8)[0]
    assert window["obs"].dtype == torch.uint8 and window["obs"].shape == (9, 60, 80, 3)


def test_dm_control_state_collection_with_async_envs(tmp_path):
    store = collect(tmp_path / "dmc", "dmc:walker-walk", episodes=2, num_envs=2, vectorization="async", progress=False)
    assert store.env_spec == "dmc:walker-walk" and len(store) == 2
    assert store.observation_space.shape == (24,) and store.action_space.shape == (6,)
    for episode in store:
        assert episode["obs"].dtype == np.float32 and episode["obs"].shape == (1001, 24)
        assert episode["truncated"][-1] and not episode["terminated"].any(), "dm-control ends by time limit"
    assert not np.array_equal(store.episode(0)["obs"], store.episode(1)["obs"]), "each env has its own seed"
    assert store.metadata["collections"][0]["vectorization"] == "async"


def test_a_store_refuses_another_env_before_collecting(tmp_path, cartpole):
    path = tmp_path / "store"
    collect(path, "CartPole-v1", episodes=3, progress=False)
    before = sorted(os.listdir(path))
    with pytest.raises(StoreMismatchError, match="CartPole-v1.*Acrobot-v1"):
        collect(path, "Acrobot-v1", episodes=5, progress=False)
    other_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(StoreMismatchError, match="action space"):
        EpisodeStore.create(path, "gym:CartPole-v1", cartpole.observation_space, other_space)
    assert sorted(os.listdir(path)) == before
    assert len(EpisodeStore.create(path, "CartPole-v1", cartpole.observation_space, cartpole.action_space)) == 3
    with pytest.raises(FileNotFoundError, match="no episode store"):
        EpisodeStore(tmp_path / "nothing")


def test_add_rejects_malformed_episodes_and_writes_nothing(tmp_path, cartpole):
    store = EpisodeStore.create(tmp_path / "s", "CartPole-v1", cartpole.observation_space, cartpole.action_space)
    good = cartpole.episode(0)
    bad = {
        "obs without the final frame": {**good, "obs": good["obs"][:-1]},
        "unfinished": {**good, "terminated": np.zeros_like(good["terminated"])},
        "ended twice": {**good, "terminated": np.ones_like(good["terminated"])},
        "wrong obs width": {**good, "obs": np.zeros((len(good["obs"]), 5), np.float32)},
        "float actions for Discrete": {**good, "action": good["action"] + 0.5},
        "extra key": {**good, "info": np.zeros(3)},
    }
    for name, episode in bad.items():
        with pytest.raises(InvalidEpisodeError):
            store.add(episode)
    assert len(store) == 0 and not list((tmp_path / "s").glob("*.npz"))
    store.add(good)
    assert len(EpisodeStore(tmp_path / "s")) == 1 and EpisodeStore(tmp_path / "s").num_steps == len(good["action"])


def test_collection_counts_what_is_stored_and_does_not_replay_it(tmp_path):
    a = collect(tmp_path / "a", "CartPole-v1", episodes=6, seed=3, progress=False)
    b = collect(tmp_path / "b", "CartPole-v1", episodes=3, seed=3, progress=False)
    assert all(np.array_equal(a.episode(i)["obs"], b.episode(i)["obs"]) for i in range(3)), "a seed fixes the data"
    b = collect(tmp_path / "b", "CartPole-v1", episodes=6, seed=3, progress=False)
    assert len(b) == 6
    firsts = [e["obs"][0].tobytes() for e in b]
    assert len(set(firsts)) == 6, "the resumed part starts from new initial states"
    assert len(collect(tmp_path / "b", "CartPole-v1", episodes=4, progress=False)) == 6, "a total already held"


def test_collect_with_a_callable_policy_and_a_controller(tmp_path):
    def push_left(obs):
        """Always push the cart left."""
        return np.zeros(len(obs), dtype=np.int64)

    store = collect(tmp_path / "left", "CartPole-v1", episodes=4, num_envs=2, policy=push_left, progress=False)
    assert len(store) == 4 and all((e["action"] == 0).all() for e in store)
    assert store.metadata["collections"][0]["policy"]["description"] == "Always push the cart left."

    class Balancer:
        """Push towards the side the pole leans to."""

        def act(self, obs):
            return torch.as_tensor(obs[:, 2] > 0).long()  # a torch-returning controller

    store = collect(tmp_path / "balance", "CartPole-v1", episodes=3, policy=Balancer(), progress=False)
    for e in store:
        assert np.array_equal(e["action"], (e["obs"][:-1, 2] > 0).astype(np.int64))
    assert np.mean(store.lengths) > 25, "a sensible controller balances longer than chance"
    assert store.metadata["collections"][0]["policy"]["name"].endswith("Balancer")

    with pytest.raises(ValueError, match="shape"):
        collect(tmp_path / "bad", "CartPole-v1", episodes=1, policy=lambda obs: np.zeros((3,)), progress=False)


def test_one_env_steps_like_a_vector_env_of_one():
    one, vector = BatchOfOne(make_env("CartPole-v1")), make_vector_env("CartPole-v1", 1)
    obs_a, _ = one.reset(seed=5)
    obs_b, _ = vector.reset(seed=5)
    ends = 0
    for action in np.random.default_rng(0).integers(0, 2, size=(300, 1)):
        a, b = one.step(action), vector.step(action)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
        if a[2][0] or a[3][0]:
            ends += 1
            np.testing.assert_array_equal(a[4]["final_obs"][0], b[4]["final_obs"][0])
    assert ends >= 3


def test_sequence_windows_are_slices_of_episodes(cartpole):
    length = 16
    data = SequenceDataset(cartpole, length)
    assert len(data) == sum(max(t - length + 1, 1) for t in cartpole.lengths)
    seen = set()
    for i in range(len(data)):
        w = data[i]
        e, t = int(w["episode"]), int(w["start"])
        seen.add((e, t))
        episode, size = cartpole.episode(e), int(w["mask"].sum())
        assert size == min(length, cartpole.lengths[e] - t)
        np.testing.assert_array_equal(w["obs"][: size + 1], episode["obs"][t : t + size + 1])
        for key in ("action", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(w[key][:size], episode[key][t : t + size])
        assert not w["obs"][size + 1 :].any() and not w["reward"][size:].any(), "padding is zeros"
        assert w["is_first"].tolist() == [t == 0] + [False] * length
    assert len(seen) == len(data), "every window once"
    assert (cartpole.lengths < length).any(), "the store has short episodes, so padding was tested"


def test_transitions_pair_each_obs_with_the_next_one(cartpole):
    data = TransitionDataset(cartpole, episodes=[1, 2])
    assert len(data) == cartpole.lengths[1] + cartpole.lengths[2]
    episode = cartpole.episode(1)
    for t in range(cartpole.lengths[1]):
        item = data[t]
        np.testing.assert_array_equal(item["obs"], episode["obs"][t])
        np.testing.assert_array_equal(item["next_obs"], episode["obs"][t + 1])
        assert item["action"] == episode["action"][t] and item["reward"] == episode["reward"][t]
    last = data[int(cartpole.lengths[1]) - 1]
    assert last["terminated"] or last["truncated"]
    np.testing.assert_array_equal(last["next_obs"], episode["obs"][-1])
    assert data[-1]["terminated"] or data[-1]["truncated"]
    with pytest.raises(IndexError):
        data[len(data)]


def test_split_is_by_episode_deterministic_and_stable_as_the_store_grows():
    train, val = split_episodes(500, 0.2, seed=1)
    assert not set(train) & set(val) and sorted([*train, *val]) == list(range(500))
    assert 70 < len(val) < 130
    assert all(np.array_equal(a, b) for a, b in zip((train, val), split_episodes(500, 0.2, seed=1)))
    assert not np.array_equal(val, split_episodes(500, 0.2, seed=2)[1])
    grown_train, grown_val = split_episodes(800, 0.2, seed=1)
    assert np.array_equal(grown_val[grown_val < 500], val), "collecting more never moves an episode"
    assert [len(side) for side in split_episodes(2, 0.01)] == [1, 1]


@pytest.mark.parametrize("kind", ["sequence", "transition"])
def test_datamodule_loaders_keep_train_and_val_episodes_apart(cartpole, kind):
    if kind == "sequence":
        module = SequenceDataModule(cartpole.path, 8, batch_size=32, val_fraction=0.25, seed=0)
    else:
        module = TransitionDataModule(cartpole, batch_size=64, val_fraction=0.25, seed=0)
    module.setup("fit")
    assert not set(module.train_episodes) & set(module.val_episodes)
    assert len(module.train_episodes) + len(module.val_episodes) == len(cartpole)
    assert module.observation_space == cartpole.observation_space and module.env_spec == "gym:CartPole-v1"
    for loader, episodes, size in ((module.train_dataloader(), module.train_episodes, len(module.train_dataset)),
                                   (module.val_dataloader(), module.val_episodes, len(module.val_dataset))):
        positions = [p for batch in loader for p in _batch_episodes(batch, cartpole)]
        assert set(positions) <= set(episodes.tolist())
        assert len(positions) == size, "an epoch sees every item once"


def _batch_episodes(batch, store):
    """Which episodes a batch's items came from (transitions carry no index: find them by obs)."""
    if "episode" in batch:
        return batch["episode"].tolist()
    where = {e["obs"][t].tobytes(): i for i, e in enumerate(store) for t in range(len(e["action"]))}
    return [where[o.numpy().tobytes()] for o in batch["obs"]]


def test_datamodule_with_workers_trains_a_lightning_model(cartpole):
    import lightning as L

    class NextObs(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(5, 4)

        def _loss(self, batch):
            x = torch.cat([batch["obs"], batch["action"][:, None].float()], dim=1)
            return torch.nn.functional.mse_loss(self.net(x), batch["next_obs"])

        def training_step(self, batch, _):
            return self._loss(batch)

        def validation_step(self, batch, _):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    module, model = TransitionDataModule(cartpole, batch_size=128, num_workers=2), NextObs()
    trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    (before,) = trainer.validate(model, datamodule=module, verbose=False)
    trainer.fit(model, datamodule=module)
    assert trainer.callback_metrics["val_loss"] < 0.3 * before["val_loss"]


def test_block_shuffle_reads_each_episode_about_once(cartpole):
    data = TransitionDataset(cartpole, cache_bytes=1)  # room for the one episode a cache always keeps
    sampler = BlockShuffleSampler(data, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(len(data)))
    episode_of = np.repeat(np.arange(len(data.lengths)), data.lengths)[order]
    switches = int((np.diff(episode_of) != 0).sum())
    assert switches == len(data.lengths) - 1, "each episode's items come together"
    assert list(sampler) != order, "a new order each epoch"
    sampler.set_epoch(0)
    assert list(sampler) == order

    roomy = TransitionDataset(cartpole)  # the whole store fits the cache: one uniform shuffle
    episode_of = np.repeat(np.arange(len(roomy.lengths)), roomy.lengths)[list(BlockShuffleSampler(roomy))]
    assert (np.diff(episode_of) != 0).sum() > len(order) / 2


def test_episode_cache_stays_within_its_bytes(cartpole):
    sizes = [sum(a.nbytes for a in cartpole.episode(i).values()) for i in range(10)]
    cache = EpisodeCache(max_bytes=sum(sizes[:3]))
    for path in cartpole.episode_paths[:10]:
        cache.get(path)
    assert 1 <= len(cache) <= 3 and cache._bytes <= cache.max_bytes
    assert cache.get(cartpole.episode_paths[9]) is cache.get(cartpole.episode_paths[9])


def test_collecting_does_not_import_torch(run_python):
    """Spawned async env processes re-import the collecting script; they should stay light."""
    result = run_python("""
        import sys
        from worldkit.data import collect, EpisodeStore
        print("torch" in sys.modules, "lightning" in sys.modules)
        from worldkit.data import SequenceDataModule
        print("lightning" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True"]


def test_background_writer_publishes_in_order_and_stops_at_a_bad_episode(tmp_path, cartpole):
    episodes = [cartpole.episode(i) for i in range(12)]
    store = EpisodeStore.create(tmp_path / "s", "CartPole-v1", cartpole.observation_space, cartpole.action_space)
    store.lock()
    writer = BackgroundWriter(store, threads=4, max_pending=3)
    for episode in episodes:
        writer.add(episode)
    writer.close()
    assert [p.name for p in store.episode_paths] == [p.name for p in cartpole.episode_paths[:12]]
    assert all(np.array_equal(store.episode(i)["obs"], episodes[i]["obs"]) for i in range(12))

    writer = BackgroundWriter(store, threads=4)
    with pytest.raises(InvalidEpisodeError):  # from whichever call reaches the bad episode
        for episode in (episodes[0], {**episodes[1], "obs": episodes[1]["obs"][:-1]}, episodes[2], episodes[3]):
            writer.add(episode)
        writer.close()
    writer.close()  # the episodes behind the bad one were dropped, with their files
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.startswith("ep-")) == [".lock", "store.json"]
    store.close()
    assert len(store) == 13 and len(EpisodeStore(tmp_path / "s")) == 13


def test_a_policy_with_memory_hears_when_each_episode_ends(tmp_path):
    class CountingSteps:
        """Push left for the first 5 steps of each episode, then right."""

        def __init__(self):
            self.steps = np.zeros(2, dtype=int)

        def act(self, obs):
            return (self.steps >= 5).astype(np.int64)

        def episodes_ended(self, done):
            self.steps = np.where(done, 0, self.steps + 1)

    store = collect(tmp_path / "memory", "CartPole-v1", episodes=6, num_envs=2, policy=CountingSteps(), progress=False)
    for e in store:  # had a reset been missed, a later episode would start pushing right
        assert (e["action"][:5] == 0).all() and (e["action"][5:] == 1).all()


def test_dict_observations_round_trip_through_the_store_and_its_windows(tmp_path, monkeypatch):
    """State and image side by side (a gymnasium Dict space): collected, stored as one member per
    part, and read back as windows of each part."""
    monkeypatch.syspath_prepend(os.path.dirname(__file__))
    import user_envs  # noqa: F401 - registers WorldkitSeeingCorridor-v0

    store = collect(tmp_path / "store", "WorldkitSeeingCorridor-v0", steps=120, seed=0, progress=False)
    assert isinstance(store.observation_space, gym.spaces.Dict)
    reopened = EpisodeStore(tmp_path / "store")
    episode = reopened.episode(0)
    assert set(episode["obs"]) == {"state", "image"} and episode["obs"]["image"].dtype == np.uint8
    assert len(episode["obs"]["state"]) == len(episode["obs"]["image"]) == len(episode["action"]) + 1
    # the picture shows the state: its lit columns grow with the position
    np.testing.assert_array_equal(episode["obs"]["image"][:, 0, :, 0].sum(-1) > 0, True)
    window = SequenceDataset(reopened, 8)[0]
    assert window["obs"]["image"].shape == (9, 16, 16, 3) and window["obs"]["state"].shape == (9, 2)
    transition = TransitionDataset(reopened)[3]
    np.testing.assert_array_equal(transition["next_obs"]["state"].numpy(), episode["obs"]["state"][4])
    with pytest.raises(InvalidEpisodeError, match="dict of the arrays"):
        reopened.add({**episode, "obs": episode["obs"]["state"]})
