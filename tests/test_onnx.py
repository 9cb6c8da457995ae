"""ONNX export: the file ONNX Runtime runs computes what the PyTorch generator computes."""


import pytest
import torch
from omegaconf import OmegaConf

import prunegen.deploy.onnx as ox
from prunegen.deploy.compact import load_compact
from prunegen.deploy.export import export_generator
from prunegen.deploy.onnx import export_onnx, load_onnx, onnx_record
from prunegen.models.networks.dcgan import DCGANGenerator

TOLERANCE = 1e-5


def _generator(num_classes: int) -> DCGANGenerator:
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=16, ngf=8, image_size=16, num_classes=num_classes)
    with torch.no_grad():  # BatchNorm statistics that are not the identity, as after training
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    return g.eval()


@pytest.mark.parametrize("num_classes", [0, 10])
def test_onnx_runtime_matches_pytorch_at_any_batch_size(tmp_path, num_classes):
    g = _generator(num_classes)
    path = export_onnx(g, tmp_path / "g.onnx")
    onnx_g = load_onnx(path, threads=1)
    assert onnx_g.latent_dim == 16 and onnx_g.conditional == bool(num_classes)
    for batch in (1, 7, 33):  # the batch axis is dynamic (exported with 2)
        z = torch.randn(batch, 16)
        labels = torch.arange(batch) % num_classes if num_classes else None
        out = onnx_g(z, labels)
        assert out.shape == (batch, 1, 16, 16)
        assert (out - g(z, labels)).abs().max().item() <= TOLERANCE
    if num_classes:
        assert not torch.allclose(onnx_g(z, torch.zeros(batch, dtype=torch.long)), out)  # labels reach the graph
        with pytest.raises(ValueError, match="labels"):
            onnx_g(z)


def test_onnx_record_refuses_a_mismatch_and_writes_nothing(tmp_path, monkeypatch):
    g = _generator(0)
    monkeypatch.setattr(ox, "onnx_max_abs_diff", lambda path, generator: 1.0)
    with pytest.raises(RuntimeError, match="nothing written"):
        onnx_record(g, g, tmp_path / "out" / "g.onnx", TOLERANCE, batch=4, repeats=1)
    assert not (tmp_path / "out").exists()


def test_export_format_onnx_writes_both_files_and_times_them(tmp_path):
    g = _generator(10)
    settings = OmegaConf.create({"format": "onnx", "output_name": "g.pt", "tolerance": TOLERANCE, "batch_size": 8,
                                 "repeats": 2, "fuse_batchnorm": True, "channels_last": True})
    record = on_disk = export_generator(g, g, tmp_path, settings, g)  # the record export.json gets
    assert on_disk["onnx"]["path"] == str(tmp_path / "g.onnx") and on_disk["settings"]["format"] == "onnx"
    assert on_disk["onnx"]["max_abs_diff"] <= TOLERANCE
    for side in ("dense", "compact"):
        assert set(on_disk["onnx"][side]) == {"latency_ms_1_thread", "latency_ms_all_threads"}
        assert all(v > 0 for v in on_disk["onnx"][side].values())
    z, labels = torch.randn(5, 16), torch.arange(5)
    assert torch.allclose(load_onnx(record["onnx"]["path"])(z, labels), load_compact(tmp_path / "g.pt")(z, labels), atol=TOLERANCE)
    best = on_disk["best_runtime"]  # the faster of PyTorch and ONNX Runtime for the compact generator
    fastest = min(on_disk["compact"]["latency_ms"], on_disk["onnx"]["compact"]["latency_ms_1_thread"])
    assert best["compact_latency_ms"] == fastest and best["name"] in ("pytorch", "onnxruntime")
    assert best["speedup_per_macs_ratio"] == pytest.approx(best["speedup"] / on_disk["macs_ratio"])


def test_unknown_export_format_is_named(tmp_path):
    settings = OmegaConf.create({"format": "tflite", "output_name": "g.pt", "tolerance": TOLERANCE})
    with pytest.raises(ValueError, match="export.format.*'tflite'"):
        export_generator(_generator(0), _generator(0), tmp_path, settings, _generator(0))
    assert not any(tmp_path.iterdir())
