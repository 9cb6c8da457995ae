"""Int8 export: a real int8 ONNX file that plain onnxruntime runs, verified against fp32, scored like the rest."""

import json

import onnx
import pytest
import torch
from omegaconf import OmegaConf

from prunegen.deploy.onnx import export_onnx, load_onnx
from prunegen.deploy.quantize import OrtGenerator, int8_record, op_coverage, quantize_onnx, weight_dtypes
from prunegen.models.networks.dcgan import DCGANGenerator
from prunegen.reporting.table import compress_rows, table_rows
from prunegen.run.checks import check_export
from prunegen.train import train

SETTINGS = {"batch_size": 8, "repeats": 1, "quantize": "int8", "int8_tolerance": 0.05, "int8_form": "auto",
            "calibration": {"method": "minmax", "samples": 64}}


def _generator(num_classes: int = 0) -> DCGANGenerator:
    torch.manual_seed(0)
    return DCGANGenerator(latent_dim=16, ngf=8, image_size=16, num_classes=num_classes).eval()


def test_int8_file_has_int8_weights_runs_in_onnxruntime_and_its_report_matches_the_file(tmp_path):
    g = _generator()
    record = int8_record(g, tmp_path, OmegaConf.create({**SETTINGS, "int8_form": "transposed"}))
    path = tmp_path / "generator_int8.onnx"
    assert record["path"] == str(path) and path.exists()
    # every conv / transposed-conv weight is stored as int8 in the file (none left in float)
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert len(convs) == 3 and record["weight_dtypes"] == {"int8": 3} == weight_dtypes(path)
    # plain onnxruntime loads and runs it; it stays within tolerance of the PyTorch generator
    z = torch.randn(8, 16)
    out = load_onnx(path)(z)
    assert out.shape == (8, 1, 16, 16)
    assert (out - g(z)).abs().mean() < 0.05
    assert record["mean_abs_diff"] <= record["max_abs_diff"] and record["mean_abs_diff"] < SETTINGS["int8_tolerance"]
    # the coverage report is read from the file ORT optimises: recomputing it gives the same layers
    assert record["coverage"] == op_coverage(path)
    # transposed convolutions have no int8 kernel in ORT's CPU provider: the report says so, layer by layer
    assert [(layer["op"], layer["precision"]) for layer in record["coverage"]["layers"]] == [("ConvTranspose", "float")] * 3
    assert all("no int8 ConvTranspose kernel" in layer["why"] for layer in record["coverage"]["layers"])
    assert record["form"] == "transposed" and set(record["forms"]) == {"transposed"}
    assert record["size_ratio"] > 2 and isinstance(record["isa"]["vnni"], bool)


def test_subpixel_form_runs_every_upsampling_layer_as_an_int8_conv(tmp_path):
    g = _generator()
    record = int8_record(g, tmp_path, OmegaConf.create({**SETTINGS, "int8_form": "subpixel"}))
    ops = [(layer["op"], layer["precision"]) for layer in record["coverage"]["layers"]]
    # the first layer (latent -> 4x4, stride 1) stays a transposed conv; the upsampling ones become QLinearConv
    assert ops.count(("QLinearConv", "int8")) == 2 and record["form"] == "subpixel"


def test_conditional_generator_is_quantized_with_its_labels(tmp_path):
    g = _generator(num_classes=3)
    fp32 = export_onnx(g, tmp_path / "fp32.onnx")
    out = quantize_onnx(fp32, tmp_path / "int8.onnx", g, samples=16)
    z, labels = torch.randn(6, 16), torch.arange(6) % 3
    assert (load_onnx(out)(z, labels) - g(z, labels)).abs().mean() < 0.05


def test_out_of_tolerance_int8_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(RuntimeError, match="export.int8_tolerance"):
        int8_record(_generator(), tmp_path, OmegaConf.create({**SETTINGS, "int8_tolerance": 1e-6}))
    assert not (tmp_path / "generator_int8.onnx").exists()


@pytest.mark.parametrize(("key", "value"), [("quantize", "int4"), ("int8_form", "winograd"), ("int8_tolerance", 0)])
def test_int8_keys_are_checked_by_name(key, value):
    with pytest.raises(ValueError, match=f"export.{key}"):
        check_export(OmegaConf.create({**SETTINGS, key: value}))


def test_ort_generator_follows_the_generator_protocol(tmp_path):
    from prunegen.generator import GeneratorSampler

    g = _generator()
    path = export_onnx(g, tmp_path / "g.onnx")
    images = GeneratorSampler(OrtGenerator(path, g)).sample(4, generator=torch.Generator().manual_seed(0))
    expected = GeneratorSampler(g).sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(images, expected, atol=1e-5)  # the same latents give the same images


def test_compress_run_scores_its_int8_generator_and_the_table_shows_it(make_cfg, tmp_path):
    cfg = make_cfg("pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5",
                   "export=default", "export.quantize=int8", "export.batch_size=8", "export.repeats=1",
                   "export.calibration.samples=64", "export.int8_tolerance=0.1")
    record, _ = train(cfg)
    on_disk = json.loads((tmp_path / "run" / "export.json").read_text())
    q = on_disk["int8"]
    assert {"fid", "kid_mean", "is_mean", "class_coverage"} <= set(q["metrics"])
    assert q["fid_over_fp32"] == pytest.approx(q["metrics"]["fid"] / record["metrics"]["fid"])
    assert set(q["forms"]) == {"transposed", "subpixel"}  # auto: both quantized and timed, the faster kept
    assert q["form"] == min(q["forms"], key=lambda f: q["forms"][f]["int8_ms_1_thread"])
    rows = compress_rows(record)
    assert [r[0] for r in rows][-2:] == ["compact +int8", "int8 vs fp32"]
    table = {r["run"]: r for r in table_rows(tmp_path / "run")[0]}  # prunegen-table: a `+int8` row beside the run's
    int8 = next(r for name, r in table.items() if name.endswith("+int8"))
    assert int8["FID"] == pytest.approx(q["metrics"]["fid"]) and int8["file KB"] == pytest.approx(q["file_bytes"] / 1024)
    assert int8["CPU ms/256"] == pytest.approx(q["latency_ms_1_thread"]) and int8["speedup"] is None
    assert int8["int8 / fp32 speed"] == pytest.approx(q["speedup_vs_best_fp32_1_thread"])
    assert any(r["FID"] == pytest.approx(record["metrics"]["fid"]) for name, r in table.items() if name != int8["run"])


def test_qat_fine_tune_exports_int8_that_matches_its_fake_quantized_model(make_cfg, tmp_path):
    from prunegen.deploy.qat import FakeQuantized

    cfg = make_cfg("pruning=structured", "pruning.start_epoch=0", "pruning.end_epoch=0", "pruning.final_sparsity=0.5",
                   "callbacks=[default,qat]", "callbacks.qat.start_epoch=1", "trainer.max_epochs=3",
                   "export=default", "export.quantize=int8", "export.int8_form=subpixel", "export.batch_size=8",
                   "export.repeats=1", "export.calibration.samples=256")
    record, objects = train(cfg)
    assert record["qat"]["layers"] == 3 and record["status"] == "completed"
    qat = next(c for c in objects["trainer"].callbacks if type(c).__name__ == "QuantizationAware")
    generator = objects["model"].generator.eval()
    assert not qat.quantized.handles  # hooks removed when training ended: the export saw the fp32 weights
    z = torch.randn(64, generator.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fp32 = generator(z)
        fake = FakeQuantized(generator)
        fake.fake.load_state_dict(qat.quantized.fake.state_dict())  # the ranges QAT trained with
        fake.attach()
        fake_quantized = generator(z)
        fake.detach()
    int8 = load_onnx(record["export"]["int8"]["path"])(z)
    assert (fake_quantized - fp32).abs().mean() > 0  # fake-quantization changed the outputs
    assert (int8 - fake_quantized).abs().mean() < 0.03  # the real int8 file computes what QAT trained
