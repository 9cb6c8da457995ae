import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from prunegen.generator import count_macs
from prunegen.models.networks import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("image_size", [16, 32, 64])
def test_generator_channels_agree_with_batchnorm_and_discriminator(image_size):
    G = DCGANGenerator(latent_dim=8, ngf=4, channels=3, image_size=image_size)
    D = DCGANDiscriminator(ndf=4, channels=3, image_size=image_size)
    layers = list(G.net)
    for conv, bn in zip(layers, layers[1:]):
        if isinstance(conv, nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
            assert conv.out_channels == bn.num_features
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 3, image_size, image_size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)


def test_bad_image_size_is_named():
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(image_size=28 + 2)


def test_conv_transpose_macs_match_hand_count():
    # A ConvTranspose2d does in * out * k * k MACs per *input* pixel.
    class One(nn.Module):
        latent_dim, num_classes = 200, 0

        def __init__(self):
            super().__init__()
            self.conv = nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False)

        def forward(self, z, labels=None):
            return self.conv(z.view(1, 8, 5, 5))

        def spec(self):
            return {}

    assert count_macs(One()) == 8 * 4 * 4 * 4 * 5 * 5


def test_dcgan_default_macs():
    # ngf 32 at 32 px: 64*128*16 + 128*64*16*16 + 64*32*16*64 + 32*1*16*256
    assert count_macs(DCGANGenerator(latent_dim=64, ngf=32)) == 4_456_448


def test_gan_trains_two_steps(make_cfg):
    cfg = make_cfg()
    L.seed_everything(0)
    model = instantiate(cfg.model)
    dm = instantiate(cfg.data)
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = L.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        limit_val_batches=0, accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 4  # manual optimization counts both optimizers: 2 batches = 4 steps
    after = list(model.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    x = model.sample(10)
    assert x.shape == (10, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
