from prunegen.models.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from prunegen.models.networks.encoder import ConvEncoder
from prunegen.models.networks.resnet import ResNetDiscriminator, ResNetGenerator

__all__ = [
    "ConvEncoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
]
