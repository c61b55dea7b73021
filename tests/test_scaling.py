"""Distributed data-parallel training for real: two CPU processes over gloo, one EpisodeStore."""

import subprocess
import sys
import textwrap

from safetensors.torch import load_file

from worldkit.data import collect

DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from worldkit.data import EpisodeStore, TransitionDataModule
    from worldkit.models import LatentMLPWorldModel
    from worldkit.training import TrainerConfig, make_trainer

    store_dir, out = sys.argv[1], sys.argv[2]
    store = EpisodeStore(store_dir)
    torch.manual_seed(0)
    model = LatentMLPWorldModel(17, 6, latent_dim=16)
    model.set_normalizer(torch.as_tensor(np.concatenate([store.episode(i)["obs"] for i in range(len(store))])))
    data = TransitionDataModule(store_dir, batch_size=64, val_fraction=0.25)
    config = TrainerConfig(max_steps=80, accelerator="cpu", devices="2", strategy="ddp",
                           val_check_interval=40, progress=False)
    trainer = make_trainer(config, out, wandb_mode="disabled")
    trainer.validate(model, data, verbose=False)
    before = trainer.callback_metrics["val/loss"].item()
    trainer.fit(model, data)
    after = trainer.callback_metrics["val/loss"].item()
    rank = trainer.global_rank
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.txt", "w") as handle:
        handle.write(f"rank={rank} world_size={trainer.world_size} before={before:.4f} after={after:.4f}")
    trainer.strategy.barrier()  # rank 0 exits only once rank 1 has written its files
    """
)


def test_ddp_on_two_cpu_processes_trains_one_model(tmp_path):
    collect(tmp_path / "store", "Walker2d-v4", steps=3000, seed=0, progress=False)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store"), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]
    assert sorted(line.split()[0] for line in lines) == ["rank=0", "rank=1"]
    assert all("world_size=2" in line for line in lines)
    before, after = (float(part.split("=")[1]) for part in lines[0].split()[2:])
    assert after < before, "the distributed run should lower the held-out loss"
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert rank0.keys() == rank1.keys()
    assert all((rank0[k] == rank1[k]).all() for k in rank0), "DDP keeps every process's weights identical"
