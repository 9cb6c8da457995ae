import hashlib

import pytest
import torch
from torch.utils.data import TensorDataset

from prunegen.data import DigitsDataModule
from prunegen.data.base import ImageDataModule


def test_digits_shapes_range_labels():
    dm = DigitsDataModule(image_size=32)
    x, y = dm.split_tensors("train")
    assert x.shape[1:] == (1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.99 and x.max() > 0.99
    assert set(y.tolist()) == set(range(10))
    sizes = [len(dm.split_tensors(s)[0]) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == 179
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (64, 1, 32, 32) and batch[1].shape == (64,)


def test_split_is_fixed_by_its_own_seed():
    torch.manual_seed(123)
    a = DigitsDataModule(image_size=16).split_tensors("test")[0]
    torch.manual_seed(456)
    b = DigitsDataModule(image_size=16).split_tensors("test")[0]
    c = DigitsDataModule(image_size=16, split_seed=1).split_tensors("test")[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_splits_are_disjoint():
    dm = DigitsDataModule(image_size=8)
    rows = {s: {tuple(r.flatten().tolist()) for r in dm.split_tensors(s)[0]} for s in ("train", "test")}
    # digits has a few exact duplicates; disjoint indices leave at most a handful shared
    assert len(rows["train"] & rows["test"]) < 5


# sha256 of the three splits' tensors and the first shuffled batch (torch.manual_seed(0)), computed with the
# DigitsDataModule that re-implemented splitting and loaders, before it became an ImageDataModule
SPLIT_HASHES = {
    (32, 1, 0, 0.1, 0.1): "f2accaab5af7408cf324a7dd783f0d18de1a8a5079c2271435625d97f69dfe57",
    (16, 3, 0, 0.1, 0.1): "1090645c79ad15ee85559f84e218b0a838b3fd7ba314d8c83d09729a51c1026b",
    (8, 1, 3, 0.2, 0.0): "49f5fc11a2558586c0085adfe95c0729b4b102529bfdc6a40dbe453606e66ced",
}


@pytest.mark.parametrize("key", SPLIT_HASHES)
def test_digits_split_and_batches_are_bit_identical_to_before(key):
    image_size, channels, seed, val, test = key
    dm = DigitsDataModule(image_size=image_size, channels=channels, split_seed=seed, val_fraction=val, test_fraction=test)
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        x, y = dm.split_tensors(split)
        h.update(x.numpy().tobytes())
        h.update(y.numpy().tobytes())
    torch.manual_seed(0)
    x, y = next(iter(dm.train_dataloader()))
    h.update(x.numpy().tobytes())
    h.update(y.numpy().tobytes())
    assert h.hexdigest() == SPLIT_HASHES[key]
    assert torch.rand(1).item() == pytest.approx(0.30742281675338745, abs=0)  # the loader drew what it drew before
    if key[0] == 32:
        assert [len(dm.split_tensors(s)[0]) for s in ("train", "val", "test")] == [1439, 179, 179]


def test_digits_is_an_image_datamodule_in_memory():
    dm = DigitsDataModule(image_size=8)
    assert isinstance(dm, ImageDataModule) and isinstance(dm.dataset("train"), TensorDataset)
    state = torch.random.get_rng_state()
    dm.split_tensors("test")  # no DataLoader: the global RNG is untouched
    assert torch.equal(torch.random.get_rng_state(), state)
    with pytest.raises(ValueError, match="split must be one of"):
        dm.split_tensors("holdout")
