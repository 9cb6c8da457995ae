"""Self-describing checkpoints: the resolved config travels inside, so a copied checkpoint loads and scores."""

import shutil

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from prunegen import CONFIG_DIR
from prunegen.evaluate import evaluate
from prunegen.run.checkpoint import ConfigInCheckpoint, load_model, run_config


def _fit_and_save(cfg, path, callbacks=()) -> L.LightningModule:
    """Two steps of the configured model on its data, then a checkpoint at `path`."""
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, accelerator="cpu", callbacks=list(callbacks))
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(path)
    return model.eval()


def _eval_cfg(tmp_path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=["metrics.batch_size=32", "metrics.num_samples=40", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "eval")
        cfg.paths.cache_dir = str(tmp_path.parent / "prunegen-cache")
    return cfg


@pytest.mark.slow  # end-to-end, ~1 min here; `make test` runs it, `-m 'not slow'` skips it
def test_a_moved_checkpoint_loads_and_scores_without_its_run_folder(make_cfg, tmp_path):
    cfg = make_cfg("model=cgan")  # conditional: the data's num_classes reaches the model by interpolation
    trained = _fit_and_save(cfg, tmp_path / "run" / "last.ckpt", [ConfigInCheckpoint(cfg)])
    moved = tmp_path / "elsewhere" / "copy.ckpt"
    moved.parent.mkdir()
    shutil.move(tmp_path / "run" / "last.ckpt", moved)

    stored = torch.load(moved, map_location="cpu", weights_only=True)["prunegen"]  # plain builtins
    assert stored["version"] == 1 and stored["config"] == OmegaConf.to_container(cfg, resolve=True)
    assert run_config(moved).model.generator.num_classes == 10
    model, run_cfg = load_model(moved)
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    assert torch.equal(model.sample(6, generator=g1), trained.sample(6, generator=g2))

    record = evaluate(_eval_cfg(tmp_path, f"ckpt_path={moved}"))
    assert record["status"] == "completed" and record["model"]["name"] == "cgan"
    assert record["metrics"]["num_samples"] == 40 and record["metrics"]["fid"] > 0
    assert record["data"]["name"] == "digits" and run_cfg.data.image_size == 16


def test_config_is_resolved_before_training(make_cfg):
    cfg = make_cfg()
    with open_dict(cfg):
        cfg.model.generator.ngf = "${missing_key}"
    with pytest.raises(Exception, match="missing_key"):
        ConfigInCheckpoint(cfg)
    assert ConfigInCheckpoint({"a": 1, "b": "${a}"}).config == {"a": 1, "b": 1}


def test_older_checkpoints_fall_back_to_the_run_folder_config(make_cfg, tmp_path):
    cfg = make_cfg()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    trained = _fit_and_save(cfg, ckpt)  # no ConfigInCheckpoint: as written before configs were stored
    with pytest.raises(FileNotFoundError, match="carries no config"):
        run_config(ckpt)
    (tmp_path / "run" / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / "run" / ".hydra" / "config.yaml")
    model, _ = load_model(ckpt)
    z = torch.randn(4, model.latent_dim)
    assert torch.equal(model.generator(z), trained.generator(z))
    with pytest.raises(FileNotFoundError, match="ckpt_path: no checkpoint"):
        load_model(tmp_path / "nope.ckpt")


def test_a_list_from_the_config_keeps_the_checkpoint_loadable(make_cfg, tmp_path):
    """`model.diffaugment=[translation]` reaches the model as an omegaconf ListConfig: saved as such into the
    hyperparameters, torch.load(weights_only=True) refused the file, so a requeued run found no checkpoint to
    resume from and prunegen-eval could not score it. Now it is saved as a plain list, and a file written
    before that still loads (prunegen's loaders and Lightning's resume alike)."""
    from omegaconf import ListConfig

    from prunegen.run.checkpoint import AtomicCheckpointIO, loadable, torch_load

    cfg = make_cfg("model.diffaugment=[translation]")
    path = tmp_path / "run" / "last.ckpt"
    _fit_and_save(cfg, path, [ConfigInCheckpoint(cfg)])
    assert loadable(path) is None
    hparams = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["diffaugment"] == ["translation"] and type(hparams["diffaugment"]) is list
    load_model(path)

    old = torch.load(path, map_location="cpu", weights_only=True)
    old["hyper_parameters"]["diffaugment"] = ListConfig(["translation"])  # as the files before the fix hold it
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(Exception, match="omegaconf"):
        torch.load(tmp_path / "old.ckpt", weights_only=True)
    assert loadable(tmp_path / "old.ckpt") is None
    assert list(torch_load(tmp_path / "old.ckpt")["hyper_parameters"]["diffaugment"]) == ["translation"]
    assert AtomicCheckpointIO().load_checkpoint(tmp_path / "old.ckpt")["epoch"] == old["epoch"]
