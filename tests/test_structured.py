import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from prunegen.deploy.compact import load_compact, save_compact
from prunegen.generator import count_macs, max_abs_diff
from prunegen.masks import count_parameters, prunable_layers
from prunegen.models.networks import DCGANGenerator
from prunegen.pruning import PruningCallback
from prunegen.pruning.compact import compact
from prunegen.pruning.criteria import resolve
from prunegen.pruning.structured import channel_groups, kept_channels


def _model(make_cfg, *overrides):
    L.seed_everything(0)
    return instantiate(make_cfg("model.generator.ngf=8", *overrides).model)


def _structured(model, **kwargs):
    cb = PruningCallback(granularity="structured", **kwargs)
    cb.setup(None, model, "fit")
    return cb


def test_groups_of_dcgan_generator(make_cfg):
    model = _model(make_cfg, "data.image_size=32")
    groups = channel_groups(model.generator)
    assert [g.root for g in groups] == ["net.0", "net.3", "net.6"]  # the output layer net.9 is never a root
    g = groups[1]
    assert g.size == 16
    assert {(m.path, m.param, m.dim) for m in g.members} == {
        ("net.3", "weight", 1), ("net.4", "weight", 0), ("net.4", "bias", 0), ("net.6", "weight", 0)}


@pytest.mark.parametrize("criterion", ["magnitude", "magnitude_l2", "random", "bn_scale"])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_rounds_reach_channel_target(make_cfg, criterion, scope):
    model = _model(make_cfg, "data.image_size=32")
    cb = _structured(model, criterion=criterion, scope=scope, final_sparsity=0.75, start_epoch=0, end_epoch=1, min_keep=0.1)
    for epoch in range(2):
        cb.prune(model, cb.schedule(epoch), seed=epoch)
        total = sum(g.size for g in cb.strategy.groups["generator"])
        assert cb.sparsity(model) == pytest.approx(cb.schedule(epoch), abs=len(cb.strategy.groups["generator"]) / total)
    for g in cb.strategy.groups["generator"]:
        assert kept_channels(model.generator, g).sum() >= 1


def test_masked_channel_contributes_nothing_and_compact_equals_masked(make_cfg, tmp_path):
    model = _model(make_cfg, "data.image_size=32")
    cb = _structured(model, final_sparsity=0.5)
    model.generator.train()
    model.generator(torch.randn(32, model.latent_dim))  # move BN running stats away from init
    cb.prune(model, 0.5)
    G = model.generator.eval()
    dead = (~kept_channels(G, cb.strategy.groups["generator"][1])).nonzero().flatten()
    feats = G.net[:6](torch.randn(4, model.latent_dim)[:, :, None, None])  # after BN + ReLU of net.3
    assert torch.all(feats[:, dead] == 0)

    small = compact(G)
    assert max_abs_diff(G, small) <= 1e-5
    assert [m.out_channels for m in small.net if hasattr(m, "out_channels")] == [16, 8, 4, 1]
    macs_dense, macs_small = count_macs(G), count_macs(small)
    assert 3.5 < macs_dense / macs_small < 4.5  # half the channels of every layer: ~4x fewer MACs
    assert count_parameters(small)[0] < count_parameters(G)[0] / 2.5  # the latent input of the stem stays

    path = save_compact(small, tmp_path / "g.pt")
    loaded = load_compact(path)  # weights_only=True, rebuilt from the recorded widths
    assert isinstance(loaded, DCGANGenerator)
    assert max_abs_diff(small, loaded) == 0


def test_gradient_and_taylor_differ_from_magnitude(make_cfg):
    """On a model where a big weight has no gradient and a small one has a large gradient, rankings differ."""
    model = _model(make_cfg)
    layer = model.generator.net[3]
    stats = {"generator.net.3": {"grad_sq": torch.zeros_like(layer.weight), "grad_w": torch.zeros_like(layer.weight)}}
    with torch.no_grad():
        layer.weight.fill_(0.01)
        layer.weight[0, 0] = 10.0  # large weight, zero gradient
    stats["generator.net.3"]["grad_sq"][1, 1] = 5.0
    stats["generator.net.3"]["grad_w"][1, 1] = 0.5
    for criterion, keeps in [("magnitude", (0, 0)), ("gradient", (1, 1)), ("taylor", (1, 1))]:
        scores = resolve(criterion)(layer, "weight", stats["generator.net.3"])
        assert scores.shape == layer.weight.shape
        assert tuple(int(i) for i in torch.unravel_index(scores.argmax(), scores.shape)[:2]) == keeps


def test_gradient_hooks_accumulate_only_generator_updates(make_cfg):
    cfg = make_cfg("pruning=unstructured", "pruning.criterion=gradient", "pruning.start_epoch=0", "pruning.end_epoch=0")
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    cb = instantiate(cfg.pruning)
    seen = {}
    original = cb.prune

    def spy(pl_module, sparsity, **kwargs):
        seen.update({k: v["grad_sq"].clone() for k, v in cb.stats.state_dict().items()})
        original(pl_module, sparsity, **kwargs)

    cb.prune = spy
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, callbacks=[cb])
    trainer.fit(model, datamodule=dm)
    assert set(seen) == set(prunable_layers(model, ["generator"]))
    assert all(v.sum() > 0 for v in seen.values())
    assert cb.sparsity(model) == pytest.approx(0.5, abs=1e-3)


def test_lottery_ticket_rewinds_survivors(make_cfg):
    cfg = make_cfg("pruning=unstructured", "pruning.start_epoch=0", "pruning.end_epoch=1", "pruning.every_n_epochs=1",
                   "+pruning.rewind=init", "pruning.final_sparsity=0.4", "trainer.max_epochs=2")
    L.seed_everything(0)
    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    init = {k: v.clone() for k, v in model.generator.state_dict().items()}
    cb = instantiate(cfg.pruning)
    trainer = L.Trainer(max_epochs=2, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, callbacks=[cb])
    trainer.fit(model, datamodule=dm)
    state = model.generator.state_dict()
    for key, value in init.items():
        orig = state.get(f"{key}_orig", state.get(key))
        assert torch.equal(orig, value), key  # every weight, BN statistic and bias back to init
    assert cb.sparsity(model) == pytest.approx(0.4, abs=1e-3)
    opt_g = trainer.optimizers[0]
    assert all(p not in opt_g.state for p in model.generator.parameters())  # optimizer state reset


@pytest.mark.parametrize("kwargs, key", [
    ({"criterion": "bn_scale"}, "granularity=structured"),
    ({"granularity": "channels"}, "granularity"),
    ({"rewind": "sometimes"}, "rewind"),
    ({"round_to": 0}, "round_to"),
])
def test_bad_structured_settings(kwargs, key):
    with pytest.raises(ValueError, match=key):
        PruningCallback(**kwargs)


@pytest.mark.parametrize("model_name", ["vae", "sngan_resnet", "cgan"])
def test_compact_equals_masked_for_other_generators(make_cfg, model_name):
    L.seed_everything(0)
    tiny = model_name != "vae"  # the tiny overrides name a discriminator, which a VAE has not
    model = instantiate(make_cfg(f"model={model_name}", "data.image_size=32", tiny=tiny).model)
    model.generator.train()
    labels = torch.arange(16) % model.num_classes if model.num_classes else None
    model.generator(torch.randn(16, model.latent_dim), labels)  # BN statistics away from init
    cb = _structured(model, final_sparsity=0.5)
    assert cb.strategy.groups["generator"], model_name
    cb.prune(model, 0.5)
    G = model.generator.eval()
    small = compact(G)
    assert max_abs_diff(G, small) <= 1e-5
    assert count_macs(small) < count_macs(G) / 2


def test_inference_copy_computes_the_same(make_cfg):
    from prunegen.deploy.inference import prepare_inference

    model = _model(make_cfg, "data.image_size=32")
    G = model.generator.train()
    G(torch.randn(16, G.latent_dim))
    G.eval()
    fast = prepare_inference(G, fuse_batchnorm=True, channels_last=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.PixelShuffle) for m in fast.modules())  # the 1-channel output layer
    assert max_abs_diff(G, fast) <= 1e-5
