import torch

from prunegen.data import DigitsDataModule


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
