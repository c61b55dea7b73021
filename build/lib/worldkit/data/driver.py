"""The one acting driver: a policy steps real envs, and whole episodes come out.

Collection, evaluation, videos and online agents all act through :func:`drive`, so they agree on
how an env is stepped, when an episode ends, what an episode holds and when it succeeded.

A policy is None (uniform random actions), a callable ``obs_batch -> actions`` or an object with
``act(obs_batch)``; actions may be numpy arrays or torch tensors. A policy with memory (one reading
a world model's state) may also have ``episodes_ended(done)``, called after every step with the
mask of envs whose episode just ended (and once before the first step, with every env starting).
"""

from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from worldkit.data.batch_of_one import BatchOfOne
from worldkit.data.policy import as_action_batch, resolve_policy
from worldkit.observations import obs_index, obs_stack

Episode = dict[str, np.ndarray]
"""``obs`` (T + 1, ...), ``action`` (T, ...), ``reward`` (T,), ``terminated`` and ``truncated`` (T,),
as an :class:`~worldkit.data.EpisodeStore` takes it"""


def succeeded(episode: Episode) -> bool:
    """An episode succeeds when it is terminated (not truncated) with a positive last reward, as
    MiniWorld's tasks pay only on reaching the goal. The one success rule of worldkit."""
    return bool(episode["terminated"][-1] and episode["reward"][-1] > 0)


def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The one result schema of a set of episodes: ``episodes``, ``mean_return``, ``std_return``
    (sample std, 0 for one episode), ``mean_length``, ``success_rate`` and the per-episode
    ``returns``, ``lengths`` and ``successes`` (with any other per-episode keys, listed too)."""
    if not summaries:
        raise ValueError("no episode finished: nothing to summarize")
    plural = {"return": "returns", "length": "lengths", "success": "successes"}
    per_episode = {plural.get(key, key): [row[key] for row in summaries] for key in summaries[0]}
    returns = np.asarray(per_episode["returns"], dtype=np.float64)
    return {"episodes": len(summaries), "mean_return": float(returns.mean()),
            "std_return": float(returns.std(ddof=1)) if len(returns) > 1 else 0.0,
            "mean_length": float(np.mean(per_episode["lengths"])),
            "success_rate": float(np.mean(per_episode["successes"])), **per_episode}


def drive(envs: "gym.Env | gym.vector.VectorEnv | BatchOfOne", policy: Any = None, *, episodes: int | None = None,
          steps: int | None = None, seed: int | None = None, seeds: Iterable[int] | None = None,
          action_seed: int | None = None, max_steps: int | None = None, on_episode: Callable[[Episode], None] | None = None,
          progress: "bool | str" = False) -> list[dict[str, Any]]:
    """Step ``envs`` with ``policy`` until ``episodes`` episodes, or episodes of ``steps`` steps in
    all, have finished; an episode still running then is dropped. Episodes are split evenly between
    the envs of a vector env, so that short episodes are not over-counted.

    Args:
        envs: a gymnasium Env (stepped as a batch of one) or a SAME_STEP-autoreset vector env.
        policy: None (random), a callable, or an object with ``act`` (see the module's docstring).
        episodes: how many episodes to finish. Give this or ``steps``.
        steps: how many steps of finished episodes to gather.
        seed: seeds the first reset.
        seeds: one reset seed per episode, in order (a single env only): each episode is
            reproducible on its own, whichever process runs it.
        action_seed: seeds the random actions of ``policy=None`` (default: the first reset's seed;
            with ``seeds``, each episode's own).
        max_steps: cut each episode after this many steps, as truncated (a single env only).
        on_episode: gets each finished episode whole.
        progress: a progress bar (its description, if a string).

    Returns:
        One row per finished episode: ``return``, ``length`` and ``success``.
    """
    seeds = None if seeds is None else [int(s) for s in seeds]
    if seeds is not None and episodes is None and steps is None:
        episodes = len(seeds)
    if seeds is not None and (episodes is None or len(seeds) < episodes):
        raise ValueError(f"seeds gives {len(seeds)} reset seeds; one per episode is needed (episodes={episodes})")
    driver = Driver(envs, seed=seed, seeds=seeds, max_steps=max_steps, action_seed=action_seed)
    return driver.run(policy, episodes=episodes, steps=steps, on_episode=on_episode, progress=progress)


class Driver:
    """Steps envs across calls: an episode still running when :meth:`run` returns goes on in the
    next call (as an online agent collects, a chunk at a time between its updates), and the policy
    may change from one call to the next (random actions, then the agent's).

    Args:
        envs: a gymnasium Env (stepped as a batch of one) or a SAME_STEP-autoreset vector env.
        seed: seeds the first reset.
        seeds: one reset seed per episode, in order (a single env only).
        action_seed: seeds the random actions of ``policy=None`` (default: the first reset's seed).
        max_steps: cut each episode after this many steps, as truncated (a single env only).
    """

    def __init__(self, envs: "gym.Env | gym.vector.VectorEnv | BatchOfOne", *, seed: int | None = None,
                 seeds: "list[int] | None" = None, action_seed: int | None = None, max_steps: int | None = None):
        single = isinstance(envs, gym.Env)
        if not single and (seeds is not None or max_steps is not None):
            raise ValueError("seeds= and max_steps= step a single env: pass a gymnasium Env")
        if single:
            envs = BatchOfOne(envs, autoreset=seeds is None and max_steps is None)
        self.envs, self.seeds, self.max_steps = envs, seeds, max_steps
        self.first_seed = seeds[0] if seeds is not None else seed
        self.action_seed = self.first_seed if action_seed is None else action_seed
        self.obs: np.ndarray | None = None
        self.recorders: list[_Recorder] = []

    @property
    def num_envs(self) -> int:
        return self.envs.num_envs

    def run(self, policy: Any = None, *, episodes: int | None = None, steps: int | None = None,
            rounds: int | None = None, on_episode: Callable[[Episode], None] | None = None,
            progress: "bool | str" = False) -> list[dict[str, Any]]:
        """Step until ``episodes`` more episodes, or episodes of ``steps`` more steps, have finished
        (see :func:`drive`), or for ``rounds`` steps of every env, keeping every episode that
        finishes (as an online agent collects); the rows of the episodes finished in this call."""
        if sum(x is not None for x in (episodes, steps, rounds)) != 1:
            raise ValueError("give exactly one of steps=, episodes= or rounds=")
        target = next(x for x in (episodes, steps, rounds) if x is not None)
        if target < 1:
            raise ValueError(f"episodes and steps must be at least 1, got {target}")
        envs, n = self.envs, self.envs.num_envs
        act, _ = resolve_policy(policy, envs.action_space)
        episodes_ended = getattr(policy, "episodes_ended", None)
        if self.obs is None:
            if policy is None and self.action_seed is not None:
                envs.action_space.seed(self.action_seed)
            self.obs, _ = envs.reset(seed=self.first_seed)
            if episodes_ended is not None:
                episodes_ended(np.ones(n, dtype=bool))
            self.recorders = [_Recorder(obs_index(self.obs, i)) for i in range(n)]
        quota = np.full(n, np.inf) if episodes is None else np.array([episodes // n + (i < episodes % n) for i in range(n)])
        finished: list[dict[str, Any]] = []
        done_so_far = 0
        unit = "episode" if episodes is not None else "step" if steps is not None else "round"
        bar = tqdm(total=target, unit=unit, desc=progress if isinstance(progress, str) else None, disable=not progress)
        try:
            while done_so_far < target:
                if rounds is not None:
                    done_so_far += 1
                    bar.update(1)
                actions = as_action_batch(act(self.obs), envs.action_space)
                obs, reward, terminated, truncated, infos = envs.step(actions)
                if self.max_steps is not None and len(self.recorders[0].action) + 1 >= self.max_steps:
                    truncated = truncated | ~terminated
                done = terminated | truncated
                if episodes_ended is not None:
                    episodes_ended(done)
                for i, recorder in enumerate(self.recorders):
                    if not done[i]:
                        recorder.step(actions[i], reward[i], obs_index(obs, i))
                        continue
                    final_obs = infos["final_obs"][i] if "final_obs" in infos else obs_index(obs, i)
                    episode = recorder.finish(actions[i], reward[i], final_obs, terminated[i], truncated[i])
                    if rounds is not None:
                        finished.append(_row(episode))
                        if on_episode is not None:
                            on_episode(episode)
                    elif done_so_far < target and quota[i] > 0:
                        quota[i] -= 1
                        finished.append(_row(episode))
                        if on_episode is not None:
                            on_episode(episode)
                        gained = 1 if episodes is not None else len(episode["action"])
                        done_so_far += gained
                        bar.update(min(gained, target - bar.n))
                    if "final_obs" not in infos and (done_so_far < target or rounds is not None):
                        # no autoreset: the next episode starts here
                        next_seed = self.seeds[len(finished)] if self.seeds is not None else None
                        if policy is None and next_seed is not None:
                            envs.action_space.seed(next_seed)
                        obs, _ = envs.reset(seed=next_seed)
                        if episodes_ended is not None:
                            episodes_ended(np.ones(n, dtype=bool))
                    self.recorders[i] = _Recorder(obs_index(obs, i))  # same-step autoreset: it starts the next episode
                self.obs = obs
                if "final_obs" not in infos and done.any() and done_so_far >= target and rounds is None:
                    self.obs = None  # an env without autoreset that is not reset: the next call resets it
        finally:
            bar.close()
        return finished


def _row(episode: Episode) -> dict[str, Any]:
    return {"return": float(episode["reward"].sum()), "length": len(episode["action"]), "success": succeeded(episode)}


class _Recorder:
    """The observations, actions and rewards of one env's running episode."""

    def __init__(self, first_obs: np.ndarray):
        self.obs = [first_obs]
        self.action: list[np.ndarray] = []
        self.reward: list[float] = []

    def step(self, action: np.ndarray, reward: float, next_obs: np.ndarray) -> None:
        self.action.append(action)
        self.reward.append(reward)
        self.obs.append(next_obs)

    def finish(self, action, reward, final_obs, terminated: bool, truncated: bool) -> Episode:
        self.step(action, reward, final_obs)
        ends = np.zeros((2, len(self.action)), dtype=bool)
        ends[:, -1] = terminated, truncated
        return {"obs": obs_stack(self.obs), "action": np.stack(self.action),
                "reward": np.asarray(self.reward, dtype=np.float32), "terminated": ends[0], "truncated": ends[1]}
