"""Datamodules: image folders (labels, resizing, bad files), torchvision sets without files, caps."""

import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from prunegen.data import DigitsDataModule, ImageFolderDataModule, MNISTDataModule


def _png(path: Path, value: int, size=(20, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_image_folder_labels_from_sub_folders(tmp_path):
    for i in range(4):
        _png(tmp_path / "cats" / f"{i}.png", 0)
        _png(tmp_path / "dogs" / "nested" / f"{i}.jpg", 255)
    dm = ImageFolderDataModule(str(tmp_path), image_size=16, channels=1, test_fraction=0.25, batch_size=2)
    assert dm.num_classes == 2 and dm.classes == ["cats", "dogs"]
    x, y = dm.split_tensors("train")
    assert x.shape == (6, 1, 16, 16) and len(dm.split_tensors("test")[0]) == 2
    assert torch.equal(y, (x.mean(dim=(1, 2, 3)) > 0).long())  # dark cats are 0, bright dogs 1
    assert x.min() >= -1 and x.max() <= 1
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (2, 1, 16, 16)


def test_image_folder_without_sub_folders_is_unlabelled_and_center_cropped(tmp_path):
    img = np.zeros((20, 60, 3), dtype=np.uint8)
    img[:, 20:40] = 255  # white centre, black sides: a center crop keeps only white
    for i in range(3):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    dm = ImageFolderDataModule(str(tmp_path), image_size=8, test_fraction=0.0)
    x, y = dm.split_tensors("train")
    assert dm.num_classes == 0 and y.tolist() == [0, 0, 0]
    assert x.shape == (3, 3, 8, 8) and x[..., 1:-1].min() > 0.9  # (antialiasing softens the edge columns)


def test_corrupt_image_is_named_before_training(tmp_path):
    _png(tmp_path / "a" / "ok.png", 10)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    dm = ImageFolderDataModule(str(tmp_path), image_size=8)
    with pytest.raises(OSError, match=r"broken\.png"):
        dm.setup("fit")


def test_empty_and_mixed_folders_are_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataModule(str(tmp_path / "empty")).setup("fit")
    _png(tmp_path / "mixed" / "loose.png", 0)
    _png(tmp_path / "mixed" / "a" / "x.png", 0)
    with pytest.raises(ValueError, match="both directly inside"):
        ImageFolderDataModule(str(tmp_path / "mixed")).setup("fit")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ImageFolderDataModule(str(tmp_path / "missing")).setup("fit")


def test_image_folder_num_classes_is_checked(tmp_path):
    _png(tmp_path / "a" / "x.png", 0)
    _png(tmp_path / "b" / "x.png", 0)
    with pytest.raises(ValueError, match="data.num_classes=3 but .* 2 label sub-folders"):
        ImageFolderDataModule(str(tmp_path), num_classes=3).setup("fit")


def test_split_tensors_is_capped(tmp_path):
    for i in range(12):
        _png(tmp_path / f"{i}.png", i * 20)
    dm = ImageFolderDataModule(str(tmp_path), image_size=8, test_fraction=0.0, eval_max_images=5)
    assert len(dm.split_tensors("train")[0]) == 5 and len(dm.train_dataloader().dataset) == 12


@pytest.mark.parametrize("name, folder", [
    ("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"), ("cifar10", "cifar-10-batches-py"), ("celeba", "celeba"),
])
def test_torchvision_sets_without_files_give_the_clear_error(make_cfg, tmp_path, no_network, name, folder):
    cfg = make_cfg(f"data={name}", f"data.root={tmp_path / 'data'}")
    dm = instantiate(cfg.data)
    assert dm.name == name and dm.download is False
    for hook in (dm.prepare_data, dm.setup):
        message = rf"{name}: no dataset files in .*data/{folder}.*data.download=true"
        with pytest.raises(FileNotFoundError, match=message):
            hook()


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def test_mnist_reads_local_files(tmp_path, no_network):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 6)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    dm = MNISTDataModule(root=str(tmp_path), image_size=16, val_fraction=0.25, eval_max_images=10, batch_size=4)
    dm.prepare_data()
    x, y = dm.split_tensors("train")
    assert x.shape == (10, 1, 16, 16) and x.min() >= -1 and x.max() <= 1 and y.max() < 10
    assert len(dm.dataset("val")) == 5 and len(dm.dataset("test")) == 6
    assert next(iter(dm.train_dataloader()))[0].shape == (4, 1, 16, 16)


def test_digits_channels_and_num_classes_are_checked():
    assert DigitsDataModule(image_size=8, channels=3).split_tensors("val")[0].shape[1] == 3
    with pytest.raises(ValueError, match="num_classes is 10"):
        DigitsDataModule(num_classes=4)


def test_train_entry_point_on_an_image_folder(make_cfg, tmp_path):
    from prunegen.train import train

    for i in range(10):
        _png(tmp_path / "imgs" / f"{i}.png", 25 * i)
    from conftest import TINY

    tiny = [o for o in TINY if not o.startswith("metrics.")]
    cfg = make_cfg(*tiny, "metrics=none", "data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.batch_size=4",
                   tiny=False)
    record, _ = train(cfg)
    assert record["status"] == "completed" and record["data"] == {"name": "image_folder", "image_size": 16}
    assert (tmp_path / "run" / "samples.png").exists()
