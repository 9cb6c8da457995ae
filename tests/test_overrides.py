"""Command-line mistakes answered before Hydra and torch: the key, the fix, exit 1."""

import subprocess
import sys

import pytest

from prunegen.run.overrides import problems


@pytest.mark.parametrize(("argv", "expected"), [
    (["pruning=structured", "pruning.criterio=taylor"], r"pruning.criterio: no such key in pruning. Did you mean criterion\?"),
    (["pruning.criterion=taylor"], r"pruning is none here.*Choose pruning=NAME first \(early_bird, .*structured"),
    (["pruning=strutured"], r"pruning=strutured: no such option.*Did you mean structured or unstructured\?"),
    (["logger=wandbb"], r"The choices for logger: csv, many, none, tensorboard, wandb. Did you mean wandb\?"),
    (["model.optimizer_g.lr=-1e-3"], r"model.optimizer_g.lr=-0.001: a learning rate must be > 0"),
    (["data.batch_size=0"], r"data.batch_size=0: a batch size must be >= 1"),
    (["-m", "experiment=compress_digits", "pruning.final_sparsity=0.5,1.5"], r"pruning.final_sparsity=1.5: .* < 1"),
    (["hydra/launcher=slurm"], r"no SLURM here.*hydra/launcher=submitit_local"),
])
def test_mistakes_name_the_key_and_the_fix(argv, expected, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no sbatch
    found = problems("train", argv)
    assert len(found) == 1
    assert __import__("re").search(expected, found[0]), found[0]


def test_good_command_lines_pass(monkeypatch):
    assert problems("train", ["experiment=compress_digits", "pruning.final_sparsity=0.75", "export.quantize=int8"]) == []
    assert problems("train", ["-m", "hydra/launcher=parallel", "experiment=paper/gan_lth_sngan_cifar10", "seed=0,1,2"]) == []
    assert problems("train", ["callbacks=[default,qat]", "+callbacks.extra.x=1", "data=image_folder", "data.root=/x"]) == []
    assert problems("eval", ["ckpt_path=x.ckpt", "seeds=[0,1]"]) == []
    assert problems("train", ["-m", "hydra/launcher=submitit_local", "seed=0,1"]) == []  # a plugin's option
    monkeypatch.setattr("prunegen.run.overrides.has_gpu", lambda: False)
    assert "Use trainer=cpu" in problems("train", ["trainer=gpu"])[0]


def test_the_entry_point_exits_1_before_torch(tmp_path):
    code = ("import sys; sys.argv = ['prunegen-train', 'pruning=structured', 'pruning.criterio=x']\n"
            "from prunegen.train import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('torch' in sys.modules, e.code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "1"], out.stderr
    assert "Did you mean criterion?" in out.stderr
