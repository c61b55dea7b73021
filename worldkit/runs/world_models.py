"""World Models as a run (after the World Models write-up): V (a conv VAE), M (an MDN-RNN), C (linear,
CMA-ES in the dream).

Each seed runs these stages in ``<run_dir>/<env>-seed<k>/``, each writing its result and skipped
when that result exists, so a killed run started again with the same settings resumes:

1. collect episodes with a random or forward-biased policy      -> store/
2. train V on their frames                                      -> checkpoints/vae/, recon_grid.png
3. encode the episodes and train M on the latent sequences      -> latents.npz, checkpoints/mdnrnn/
   (with ``members`` > 1, each member of an ensemble M)          -> checkpoints/mdnrnn1/, ...
4. CMA-ES on a linear controller, entirely in M's dream         -> checkpoints/controller/, cmaes.jsonl, cmaes_curve.png
5. ``m_candidates`` - 1 more times, steps 3 and 4 with another M, from its own starting weights, on the
   same episodes                                                -> candidate<k>/ (the same files)
6. the candidate whose controller does best in ``select_episodes`` real episodes goes on
                                                                -> selection.json
7. ``rounds`` times, World Models' iterative training from the best stage so far (by the selection
   episodes): its controller (with some random actions) collects real episodes, its M goes on
   training on all episodes, and CMA-ES searches again, starting from its controller
                                                                -> <candidate>/round<i>/ (the same files, round.json)
8. keep the stage whose controller does best in the selection episodes
                                                                -> selection.json
9. evaluate that controller in the real env (100 other seeds, parallel workers) and in the dream
                                                                -> evaluation.json, real_vs_dream.gif

Why rounds: random play rarely reaches Sidewalk's box, so M first learns little of what follows
the actions a good controller takes, and CMA-ES finds behaviour the dream rewards but the real
env does not. The controller's own episodes show M what really follows them.

Why candidates: from the same V and episodes, one M's dream leads the search to a controller that
reaches the box in most real episodes and another M's, from other starting weights, to one that
almost never does; the rounds rarely repair a bad start. A few real episodes tell the two apart.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from worldkit.checkpoints import save_pretrained
from worldkit.controllers.cmaes import (
    CMAESConfig,
    LinearController,
    evaluate_in_env,
    train_in_dream,
)
from worldkit.data import EpisodeStore, TransitionDataModule, collect
from worldkit.data.driver import succeeded
from worldkit.dream.driver import LoopEscape, WorldModelPolicy, evaluate_in_real_env
from worldkit.dream.imagine import imagine
from worldkit.dream.latents import LatentEpisodes, LatentSequenceDataModule
from worldkit.envs import make_env, parse_spec
from worldkit.files import read_jsonl
from worldkit.models.mdnrnn import MDNRNN
from worldkit.models.protocol import select_state
from worldkit.models.vae import ConvVAE
from worldkit.models.vae_mdn import VAEMDNWorldModel
from worldkit.plots import cmaes_curve, frame_grid, side_by_side_gif
from worldkit.runs.folder import hold_run_dir
from worldkit.tracking import RunLogger, TrackingOptions
from worldkit.training import TrainerConfig, make_trainer

PRETRAINED_VAE, PRETRAINED_MDNRNN = "sidewalk-vae", "sidewalk-mdnrnn"
"""the shipped V and M (checkpoints/<name>/), which --pretrained reuses"""
SELECTION_SEEDS, EVALUATION_SEEDS = 50_000, 100_000
"""first real-env seeds of the controller selection and of the evaluation, each plus 1000 per run seed: every
run seed is evaluated on its own episodes, none of which any of the recipe's settings was chosen on"""


@dataclass
class WorldModelsConfig(TrackingOptions):
    """World Models (V + M + C, CMA-ES in the dream) on a MiniWorld task."""

    env: str = "miniworld:Sidewalk"
    """any MiniWorld id with Discrete actions (miniworld:OneRoom, MiniWorld-Hallway-v0, ...)"""
    seeds: tuple[int, ...] = (0,)
    pretrained: bool = False
    """reuse the shipped V and M (checkpoints/sidewalk-vae, checkpoints/sidewalk-mdnrnn) instead of
    training them; episodes are still collected, for the dreams' first frames and for the rounds"""
    frame_size: tuple[int, int] | None = None
    """(height, width) of the frames; MiniWorld's 60x80 if not given"""
    collect_episodes: int = 1500
    collect_policy: Literal["forward_biased", "random"] = "forward_biased"
    forward_probability: float = 0.6
    """forward_biased: P(move forward) (action 2); the two turns share the rest"""
    latent_dim: int = 32
    vae_channels: tuple[int, ...] = (32, 64, 128, 256)
    vae_beta: float = 0.5
    vae_kl_warmup_steps: int = 500
    vae_skips: bool = False
    """U-net skips (the dream decodes z alone; see docs/world_models.md)"""
    vae_batch_size: int = 64
    vae_trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=3000, val_check_interval=1000))
    hidden_dim: int = 256
    num_mixtures: int = 5
    repulsion_weight: float = 0.0
    sequence_length: int = 0
    """steps per training sequence of M; 0: whole episodes (the longest stored), so M learns to carry
    its state as far as a dream does. Windows shorter than the dream's horizon leave M's late
    dream steps, where Sidewalk's box is reached, in states it never trained from"""
    mdn_batch_size: int = 16
    members: int = 1
    """MDN-RNNs in M, each from its own starting weights (1: World Models' single M). With 2 or
    more, each dreamed step follows a member drawn at random, and a dream halts, paying nothing
    more, where the members disagree more than on real steps (MOReL's halt), so that the search
    cannot exploit one member's error. On Sidewalk this halting cuts short good and bad dreams
    alike and has not beaten one M (docs/world_models.md)"""
    halt_quantile: float = 0.99
    """an ensemble's dreams halt where the members' spread exceeds this quantile of their spread
    over the real episodes' steps (1: only beyond the largest)"""
    mdn_trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=4000, val_check_interval=1000))
    m_candidates: int = 0
    """first Ms, each from its own starting weights and with its own search, of which the one whose
    controller does best in the selection episodes goes on to the rounds (0: two, or the shipped M
    alone with --pretrained; 1: World Models' single M)"""
    cmaes: CMAESConfig = field(default_factory=CMAESConfig)
    act_explore: float = 0.0
    """share of the chosen controllers' actions replaced by random ones (drawn as the collection
    draws them) once their search is done: in selection, evaluation and the dream's estimate. A floor
    of 0.3 was the recipe's default before act_escape; the searches dream without it (--cmaes.explore)"""
    act_escape: int = 8
    """in the real env, a chosen controller's action at a frame that repeats one of the episode's last
    act_escape frames is drawn as the collection draws (0: never). Alone, a controller can turn left,
    right, left, ... on one spot, or walk into a wall, for a whole real episode: a loop its dreams,
    whose frames never repeat, never showed. The escape breaks the loop where it happens and leaves
    the controller alone elsewhere (LoopEscape)"""
    rounds: int = 2
    """iterative rounds after the first controller (0: World Models' single pass)"""
    round_episodes: int = 300
    """real episodes the controller collects in each round"""
    round_explore: float = 0.2
    """probability that a collecting step takes a forward-biased random action instead"""
    round_mdn_steps: int = 1500
    """M's further training steps in each round, on all episodes so far"""
    round_warm_start: bool = True
    """each round's CMA-ES starts from the controller of the stage it goes on from rather than from zero"""
    select_episodes: int = 50
    """real episodes (seeds apart from the evaluation's) that score each stage's controller, to keep the
    best one; 0 keeps the last. The controllers are still trained only in dreams"""
    eval_episodes: int = 100
    eval_workers: int = 2
    dream_eval_rollouts: int = 1024
    """dreams of the final controller, from real first frames, for the dream's own estimate"""
    threads: int = 1
    """torch threads (0: torch's default). One by default: with other jobs on the cores, two OpenMP
    threads wait on each other and the dream runs 20 to 40 times slower (an idle 2-core machine
    runs CMA-ES about a third faster with 2)"""
    run_dir: str = "runs/world_models"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("give at least one seed")
        if min(self.collect_episodes, self.eval_episodes, self.eval_workers, self.dream_eval_rollouts,
               self.round_episodes, self.round_mdn_steps) < 1:
            raise ValueError("collect_episodes, eval_episodes, eval_workers, dream_eval_rollouts, round_episodes and "
                             "round_mdn_steps must be positive")
        if self.sequence_length < 0:
            raise ValueError(f"sequence_length must be >= 0 (0: whole episodes), got {self.sequence_length}")
        if self.rounds < 0 or self.select_episodes < 0:
            raise ValueError(f"rounds and select_episodes must be >= 0, got {self.rounds} and {self.select_episodes}")
        if not 0 <= self.round_explore <= 1 or not 0 <= self.act_explore <= 1:
            raise ValueError(f"round_explore and act_explore must be in [0, 1], got {self.round_explore} and "
                             f"{self.act_explore}")
        if self.threads < 0 or self.act_escape < 0:
            raise ValueError(f"threads and act_escape must be >= 0, got {self.threads} and {self.act_escape}")
        if self.members < 1 or not 0 < self.halt_quantile <= 1:
            raise ValueError(f"members must be >= 1 and halt_quantile in (0, 1], got {self.members} and "
                             f"{self.halt_quantile}")
        if self.members > 1 and self.pretrained:
            raise ValueError("--pretrained reuses the one shipped M; train an ensemble M with --pretrained=False")
        if self.m_candidates < 0:
            raise ValueError(f"m_candidates must be >= 0 (0: two, or one with --pretrained), got {self.m_candidates}")
        if self.m_candidates > 1 and self.pretrained:
            raise ValueError("--pretrained reuses the one shipped M; train several candidate Ms with --pretrained=False")

    @property
    def first_ms(self) -> int:
        """How many candidate Ms the run trains first (``m_candidates``, with 0 resolved)."""
        return self.m_candidates or (1 if self.pretrained else 2)
        if not 0 <= self.forward_probability <= 1:
            raise ValueError(f"forward_probability must be in [0, 1], got {self.forward_probability}")


def forward_biased(forward: float) -> list[float]:
    """P(turn left), P(turn right), P(move forward)."""
    return [(1 - forward) / 2, (1 - forward) / 2, forward]


class ForwardBiased:
    """Random actions, moving forward (action 2) with a set probability and turning otherwise."""

    def __init__(self, forward: float, seed: int):
        self.probabilities = forward_biased(forward)
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.choice(3, size=len(obs), p=self.probabilities)


def run_world_models(config: WorldModelsConfig) -> list[dict]:
    """Every seed of ``config.seeds``, one after the other; each seed's evaluation. Bad settings fail
    here, before anything runs."""
    config.start_reporting()
    spec = parse_spec(config.env)  # an unknown id fails here, before anything runs
    if spec.family != "miniworld":
        raise ValueError(f"World Models runs on MiniWorld's pixel tasks; {spec} is not one")
    if config.threads:
        torch.set_num_threads(config.threads)
    return [run_seed(config, str(spec), spec.name, seed) for seed in config.seeds]


def run_seed(config: WorldModelsConfig, env: str, name: str, seed: int) -> dict:
    run = Path(config.run_dir) / f"{name}-seed{seed}"
    hold_run_dir(run)
    torch.manual_seed(seed)
    store = stage_collect(config, env, run, seed)
    vae = stage_vae(config, store, run, seed)
    latents = stage_latents(config, vae, store, run)
    num_actions = int(store.action_space.n)
    candidates = [run] + [run / f"candidate{k}" for k in range(1, config.first_ms)]
    for k, candidate in enumerate(candidates):
        world_model = stage_mdnrnn(config, vae, latents, candidate, seed, num_actions, candidate=k)
        stage_cmaes(config, world_model, _start_states(world_model, latents), candidate, seed)
    base = stage_select(config, env, candidates, run, seed)  # the rounds go on from the best candidate
    rounds, best = [], base
    for round_index in range(1, config.rounds + 1):
        stage = base / f"round{round_index}"  # goes on from the best stage so far, not merely the last
        _record_lineage(stage, best, run)
        world_model = VAEMDNWorldModel.from_pretrained(best / "checkpoints" / "world_model")
        controller = LinearController.from_pretrained(best / "checkpoints" / "controller")
        store = stage_round_collect(config, env, world_model, controller, stage, seed * 1000 + round_index)
        latents = LatentEpisodes(latents.episodes + stage_latents(config, vae, store, stage).episodes,
                                 latents.env_spec)
        world_model = stage_mdnrnn(config, vae, latents, stage, seed, num_actions, resume_from=best)
        stage_cmaes(config, world_model, _start_states(world_model, latents), stage, seed,
                    initial=controller if config.round_warm_start else None)
        rounds.append(stage)
        best = stage_select(config, env, [base, *rounds], run, seed)
    stages = [*candidates, *rounds]
    chosen = stage_select(config, env, stages, run, seed)
    world_model = VAEMDNWorldModel.from_pretrained(chosen / "checkpoints" / "world_model")
    controller = _acting(LinearController.from_pretrained(chosen / "checkpoints" / "controller"), config)
    return stage_evaluate(config, world_model, controller, _start_states(world_model, latents), latents, env, run,
                          chosen, seed)


def _record_lineage(stage: Path, source: Path, run: Path) -> None:
    """``round.json``: the stage a round went on from (kept as first written, when a resumed run re-scores)."""
    path = stage / "round.json"
    if not path.exists():
        stage.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"goes_on_from": str(source.relative_to(run))}))


def _start_states(world_model: VAEMDNWorldModel, latents: LatentEpisodes):
    """Dreams start from the real first frames of every stored episode."""
    return world_model.initial_state(len(latents))._replace(z=latents.first_latents())


def stage_collect(config: WorldModelsConfig, env: str, run: Path, seed: int) -> EpisodeStore:
    policy = ForwardBiased(config.forward_probability, seed) if config.collect_policy == "forward_biased" else None
    return collect(run / "store", env, episodes=config.collect_episodes, policy=policy, seed=seed,
                   size=config.frame_size, progress=config.progress)


def stage_vae(config: WorldModelsConfig, store: EpisodeStore, run: Path, seed: int) -> ConvVAE:
    folder = run / "checkpoints" / "vae"
    if not folder.exists() and config.pretrained:
        vae = ConvVAE.from_pretrained(PRETRAINED_VAE)
        if vae.env_spec != store.env_spec or tuple(vae.frame_shape) != tuple(store.observation_space.shape):
            raise ValueError(f"the shipped V ({PRETRAINED_VAE}) was trained on {vae.env_spec} frames of shape "
                             f"{tuple(vae.frame_shape)}; this run collects {store.env_spec} frames of shape "
                             f"{tuple(store.observation_space.shape)}: drop --pretrained to train V and M")
        save_pretrained(vae, folder, metrics={"pretrained": PRETRAINED_VAE})
    if not folder.exists():
        vae = ConvVAE(store.observation_space.shape, config.latent_dim, config.vae_channels, config.vae_beta,
                      config.vae_kl_warmup_steps, config.vae_skips)
        vae.env_spec, vae.observation_space = store.env_spec, store.observation_space
        data = TransitionDataModule(store, batch_size=config.vae_batch_size, val_fraction=0.05, seed=seed)
        metrics = _fit(vae, data, config.vae_trainer, run / "vae", config)
        save_pretrained(vae, folder, metrics=metrics)
    vae = ConvVAE.from_pretrained(folder)
    if not (run / "recon_grid.png").exists():
        _reconstruction_grid(vae, store, run / "recon_grid.png")
    return vae


def stage_latents(config: WorldModelsConfig, vae: ConvVAE, store: EpisodeStore, run: Path) -> LatentEpisodes:
    path = run / "latents.npz"
    if not path.exists():
        LatentEpisodes.encode(vae, store, progress=config.progress).save(path)
    return LatentEpisodes.load(path)


def stage_mdnrnn(config: WorldModelsConfig, vae: ConvVAE, latents: LatentEpisodes, run: Path, seed: int, num_actions: int,
                 resume_from: Path | None = None, candidate: int = 0) -> VAEMDNWorldModel:
    """Train M (each of its ``members``) on ``latents``: from scratch (the ``candidate``-th first M), or for
    ``round_mdn_steps`` more from the M in ``resume_from``; an ensemble then learns where its dreams halt."""
    folder = run / "checkpoints" / "world_model"
    if not folder.exists():
        members = [_mdnrnn_member(config, latents, run, seed, num_actions, member, resume_from,
                                  init=member + config.members * candidate)
                   for member in range(config.members)]
        world_model = VAEMDNWorldModel.compose(vae, *(mdnrnn for mdnrnn, _ in members))
        metrics = members[0][1]
        if config.members > 1:
            metrics["halt_above"] = world_model.calibrate_halt(latents, config.halt_quantile)
        save_pretrained(world_model, folder, metrics=metrics)
    return VAEMDNWorldModel.from_pretrained(folder)


def _mdnrnn_member(config: WorldModelsConfig, latents: LatentEpisodes, run: Path, seed: int, num_actions: int,
                   member: int, resume_from: Path | None, init: int = 0) -> tuple[MDNRNN, dict]:
    """One member of M, trained (and saved in ``checkpoints/mdnrnn``, ``mdnrnn1``, ...) unless it was;
    each member of each candidate (``init``: 0 for the first) starts from its own weights and sees the
    sequences in its own order."""
    name = "mdnrnn" + (str(member) if member else "")
    folder = run / "checkpoints" / name
    if folder.exists():
        return MDNRNN.from_pretrained(folder), {}
    if init:
        torch.manual_seed(seed + 1000 * init)
    if resume_from is None and config.pretrained:
        mdnrnn, trainer_config = MDNRNN.from_pretrained(PRETRAINED_MDNRNN), None
    elif resume_from is None:
        mdnrnn = MDNRNN(config.latent_dim, num_actions, config.hidden_dim, config.num_mixtures, config.repulsion_weight)
        trainer_config = config.mdn_trainer
    else:
        mdnrnn = MDNRNN.from_pretrained(resume_from / "checkpoints" / name)
        trainer_config = dataclasses.replace(config.mdn_trainer, max_steps=config.round_mdn_steps,
                                             val_check_interval=min(config.mdn_trainer.val_check_interval,
                                                                    config.round_mdn_steps))
    length = config.sequence_length or max(len(episode["action"]) for episode in latents.episodes)
    data = LatentSequenceDataModule(latents, length, batch_size=config.mdn_batch_size, seed=seed + 1000 * init)
    metrics = _fit(mdnrnn, data, trainer_config, run / name, config) if trainer_config else {
        "pretrained": PRETRAINED_MDNRNN}
    mdnrnn.env_spec = latents.env_spec
    save_pretrained(mdnrnn, folder, metrics=metrics)
    return mdnrnn, metrics


def stage_round_collect(config: WorldModelsConfig, env: str, world_model: VAEMDNWorldModel, controller: LinearController,
                        run: Path, seed: int) -> EpisodeStore:
    """Real episodes of the controller, a share of its steps replaced by forward-biased random actions."""
    exploring = controller.exploring(config.round_explore, forward_biased(config.forward_probability))
    store = collect(run / "store", env, episodes=config.round_episodes, policy=WorldModelPolicy(world_model, exploring.act),
                    seed=seed, size=config.frame_size, progress=config.progress)
    successes = [succeeded(e) for e in store]
    print(f"{run}: the controller (explore={config.round_explore}) reached the goal in "
          f"{np.mean(successes):.0%} of {len(successes)} episodes")
    return store


def stage_cmaes(config: WorldModelsConfig, world_model: VAEMDNWorldModel, start_states, run: Path, seed: int,
                initial: LinearController | None = None) -> LinearController:
    folder = run / "checkpoints" / "controller"
    if not folder.exists():
        cmaes = _search_settings(config, seed)
        history_file = run / "cmaes.jsonl"
        history_file.unlink(missing_ok=True)  # an interrupted search starts over
        with RunLogger(run / "cmaes", config, mode=config.wandb_mode, name=f"{run.name}-cmaes") as logger, \
                open(history_file, "a") as history:
            def record(row: dict) -> None:
                history.write(json.dumps(row) + "\n")
                logger.log({f"cmaes/{k}": v for k, v in row.items() if k != "generation"}, step=row["generation"])

            result = train_in_dream(world_model, start_states, cmaes, initial=initial, callback=record,
                                    progress=config.progress)
        save_pretrained(result.controller, folder, metrics=result.history[-1])
    if not (run / "cmaes_curve.png").exists():
        cmaes_curve(read_jsonl(run / "cmaes.jsonl"),
                     run / "cmaes_curve.png", run.name)
    return LinearController.from_pretrained(folder)


def stage_select(config: WorldModelsConfig, env: str, stages: list[Path], run: Path, seed: int) -> Path:
    """The stage whose controller (acting through its own stage's V and M) succeeds most often in
    ``select_episodes`` real episodes; the last stage when there is one or ``select_episodes`` is 0.

    Why: a round's search can find a way to exploit its dream that the real env does not reward,
    and then its controller is worse than an earlier one. The selection episodes' seeds are apart
    from the evaluation's, so the evaluation stays a fair test. Each stage is scored once:
    selection.json keeps every score, measured acting as the file says, and the chosen stage."""
    path = run / "selection.json"
    if len(stages) == 1 or config.select_episodes == 0:
        return stages[-1]
    names = [str(stage.relative_to(run)) for stage in stages]
    saved = json.loads(path.read_text()) if path.exists() else {}
    scored = saved.get("episodes") == config.select_episodes and _acts_as_saved(saved, config)
    scores = dict(saved["stages"]) if scored else {}  # else the controllers act otherwise now: score again
    for name, stage in zip(names, stages):
        if name not in scores:
            real = evaluate_in_env(VAEMDNWorldModel.from_pretrained(stage / "checkpoints" / "world_model"),
                                   _acting(LinearController.from_pretrained(stage / "checkpoints" / "controller"),
                                           config), env,
                                   config.select_episodes, seed=SELECTION_SEEDS + 1000 * seed,
                                   workers=config.eval_workers, size=config.frame_size, progress=config.progress,
                                   **_escape(config))
            scores[name] = {key: real[key] for key in ("success_rate", "mean_return", "mean_length")}
    best = best_stage(scores, names)
    selection = {"episodes": config.select_episodes, **_acting_settings(config), "stages": scores, "chosen": best}
    if selection != saved:
        path.write_text(json.dumps(selection, indent=2))
        print(f"{run.name}: real success of each stage's controller in {config.select_episodes} episodes: "
              + ", ".join(f"{'first' if name == '.' else name} {scores[name]['success_rate']:.0%}" for name in names)
              + f"; {'first' if best == '.' else best} chosen")
    return run / best


def best_stage(scores: dict[str, dict], names: list[str]) -> str:
    """Of ``names``, the stage with the most real successes in ``scores``; the higher mean return breaks a tie."""
    return max(names, key=lambda stage: (scores[stage]["success_rate"], scores[stage]["mean_return"]))


@torch.no_grad()
def stage_evaluate(config: WorldModelsConfig, world_model: VAEMDNWorldModel, controller: LinearController, start_states,
                   latents: LatentEpisodes, env: str, run: Path, final: Path, seed: int) -> dict:
    """The controller of the chosen stage (``final``: the run itself, or one of its rounds) in the real
    env and in the dream; logged with the run's pictures and checkpoints (W&B and ``eval/``)."""
    path = run / "evaluation.json"
    controller_path = str(final / "checkpoints" / "controller")
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("controller") == controller_path and _acts_as_saved(saved, config):
        return saved  # else another controller (or way of acting) was chosen since: evaluate it
    cmaes = _search_settings(config, seed)
    generator = torch.Generator().manual_seed(seed)
    starts = select_state(start_states, torch.randint(len(latents), (config.dream_eval_rollouts,), generator=generator))
    dream = imagine(world_model, starts, controller.act, cmaes.horizon, temperature=cmaes.temperature,
                            generator=generator)
    real = evaluate_in_env(world_model, controller, env, config.eval_episodes, seed=EVALUATION_SEEDS + 1000 * seed,
                           workers=config.eval_workers, size=config.frame_size, progress=config.progress,
                           **_escape(config))
    data_successes = [succeeded(e) for e in latents.episodes]
    result = {
        "env": env, "seed": seed, "controller": controller_path, **_acting_settings(config),
        "real": real,
        "dream": {"mean_return": dream.returns().mean().item(), "mean_length": dream.expected_length().mean().item(),
                  "rollouts": config.dream_eval_rollouts, "horizon": cmaes.horizon, "temperature": cmaes.temperature},
        "collected_data": {"policy": config.collect_policy, "episodes": len(latents),
                           "success_rate": float(np.mean(data_successes))},
    }
    _real_vs_dream_gif(world_model, controller, env, config, seed, run / "real_vs_dream.gif")
    with RunLogger(run / "eval", config, mode=config.wandb_mode, name=f"{run.name}-eval") as logger:
        logger.log({"eval/success_rate": real["success_rate"], "eval/mean_return": real["mean_return"],
                    "eval/mean_length": real["mean_length"], "dream/mean_return": result["dream"]["mean_return"],
                    "dream/mean_length": result["dream"]["mean_length"]}, step=0)
        for key, picture in [("reconstructions", run / "recon_grid.png"), ("cmaes_curve", final / "cmaes_curve.png"),
                             ("real_vs_dream", run / "real_vs_dream.gif")]:
            logger.log_image(key, picture)
        for part in ("vae", "mdnrnn", "world_model", "controller"):
            folder = (run if part == "vae" else final) / "checkpoints" / part
            logger.log_checkpoint(folder, f"{run.name}-{part}".replace("_", "-"), {"evaluation": real["success_rate"]})
    path.write_text(json.dumps(result, indent=2))
    print(f"{run.name}: real success {real['success_rate']:.2f}, return {real['mean_return']:.3f}, "
          f"steps {real['mean_length']:.1f}; dream return {result['dream']['mean_return']:.3f}")
    return result


def _fit(module, data, trainer_config: TrainerConfig, stage_dir: Path, config: WorldModelsConfig) -> dict:
    """Train with lightning, resuming from the stage's last.ckpt if an earlier run left one."""
    trainer_config = dataclasses.replace(trainer_config, progress=config.progress)
    trainer = make_trainer(trainer_config, stage_dir, wandb_mode=config.wandb_mode, hparams=config)
    last = stage_dir / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.exists() else None)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def _acting(controller: LinearController, config: WorldModelsConfig) -> LinearController:
    """The controller as the recipe lets it act after its search: with the act_explore floor."""
    return controller.exploring(config.act_explore, _exploring_actions(config))


def _acting_settings(config: WorldModelsConfig) -> dict:
    """How the chosen controllers act in the real env, as selection.json and evaluation.json record it."""
    return {"explore": config.act_explore, "explore_actions": _exploring_actions(config), "escape": config.act_escape}


def _acts_as_saved(saved: dict, config: WorldModelsConfig) -> bool:
    """Whether a saved result was measured acting as ``config`` says (files from before a setting existed
    hold its default)."""
    defaults = {"explore": 0.0, "explore_actions": None, "escape": 0}
    return all(saved.get(key, defaults[key]) == value for key, value in _acting_settings(config).items())


def _escape(config: WorldModelsConfig) -> dict:
    return {"escape": config.act_escape, "escape_actions": _exploring_actions(config)}


def _exploring_actions(config: WorldModelsConfig) -> list[float] | None:
    return forward_biased(config.forward_probability) if config.collect_policy == "forward_biased" else None


def _search_settings(config: WorldModelsConfig, seed: int) -> CMAESConfig:
    """The run's CMA-ES settings with its seed, exploring as the collection does by default."""
    return dataclasses.replace(config.cmaes, seed=seed,
                               explore_actions=config.cmaes.explore_actions or _exploring_actions(config))


@torch.no_grad()
def _reconstruction_grid(vae: ConvVAE, store: EpisodeStore, path: Path, columns: int = 8) -> None:
    """Frames from the last episodes (top), V's reconstructions (middle), and, for a VAE with skips,
    its decoding of z alone (bottom), which is all a dream shows."""
    obs = np.concatenate([store.episode(i)["obs"] for i in range(max(0, len(store) - columns), len(store))])
    frames = torch.from_numpy(obs[np.linspace(0, len(obs) - 1, columns).astype(int)])
    rows = [frames.numpy(), _to_uint8(vae.reconstruct(frames))]
    if vae.hparams.skips:
        rows.append(_to_uint8(vae.decode(vae.embed(frames))))
    frame_grid(rows, path)


@torch.no_grad()
def _real_vs_dream_gif(world_model: VAEMDNWorldModel, controller: LinearController, env_id: str, config: WorldModelsConfig,
                       seed: int, path: Path) -> None:
    """Left: the real env under the controller; right: the dream from the same first frame under the same
    controller (until it ends or the real episode does)."""
    real: list[np.ndarray] = []
    with make_env(env_id, size=config.frame_size, seed=seed) as env:
        first, _ = env.reset(seed=seed)
        start = world_model.observe(world_model.initial_state(1), None, torch.from_numpy(first)[None])
        dream = imagine(world_model, start, controller.act, config.cmaes.horizon, temperature=config.cmaes.temperature,
                        generator=torch.Generator().manual_seed(seed), keep_states=True)
        escape = LoopEscape(config.act_escape, int(env.action_space.n), _exploring_actions(config),
                            torch.Generator().manual_seed(seed))
        evaluate_in_real_env(world_model, controller.act, env, seed=seed, max_steps=config.cmaes.horizon + 1,
                             escape=escape, on_episode=lambda episode: real.extend(episode["obs"][:-1]))
    dreamed = [_to_uint8(world_model.decode(s))[0] for s in dream.states]
    dream_end = int((dream.alive >= 0.5).sum()) + 1
    side_by_side_gif(real, dreamed[:min(dream_end, len(real))], path)


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
