"""Command line: help, clean errors, `convert`, `eval --json`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from generator.model.checkpoint import load_checkpoint, save_checkpoint
from generator.cli import main
from generator.commands.init import init_model
from generator.model.quant import group_scales

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)


def test_top_level_help_lists_the_commands():
    res = cli("--help")
    assert res.returncode == 0, res.stderr
    for name in ("init", "train", "eval", "convert"):
        assert f"    {name} " in res.stdout, res.stdout


@pytest.mark.parametrize("command,words", [
    ("init", ["--cf", "--mode", "--seed"]),
    ("train", ["--cf", "--data", "--data-dir", "--mode", "--epochs", "--batch-size", "--lr",
               "--seed", "--resume", "--from", "--center-clamp", "--milestones", "--stop-after"]),
    ("eval", ["--data", "--data-dir", "--json", "--limit"]),
    ("convert", ["--cf", "--output"]),
])
def test_subcommand_help(command, words, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m generator {command}")
    for w in words:
        assert w in out, w


def test_bad_arch_name_is_one_clean_line(tmp_path):
    res = cli("init", "resnet50", "--cf", 2, "-o", tmp_path / "x.pt")
    assert res.returncode == 2
    from generator.model.spec import zoo_names
    assert res.stderr.splitlines() == [
        f"error: unknown architecture 'resnet50': not a zoo name ({', '.join(zoo_names())}) "
        "nor an existing spec file"]
    assert not (tmp_path / "x.pt").exists()


def test_train_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["train", "resnet50", "--cf", "2", "--data", "digits"], "unknown architecture 'resnet50'"),
        (["train", "digits", "--cf", "3", "--data", "digits"], "CF n=3 does not divide its 64"),
        (["train", "nin", "--cf", "2", "--data", "digits"], "digits images are 1x8x8"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv + ["-o", str(tmp_path / "t.pt")]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, (argv, err)
    assert not (tmp_path / "t.pt").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "digits", "--data", "digits", "-o", "x.pt"])  # --cf missing
    assert info.value.code == 2
    assert "--cf" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "digits", "--cf", "2", "--data", "digits", "--milestones", "a,b", "-o", "x"])
    assert info.value.code == 2
    assert "argument --milestones: expected comma-separated epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # numeric ranges: one line, exit 2
        main(["train", "digits", "--cf", "2", "--data", "digits", "--epochs", "0", "-o", "x"])
    assert info.value.code == 2
    assert capsys.readouterr().err == \
        "error: train: argument --epochs: must be an integer in [1, 100000], got 0\n"


@pytest.fixture(scope="module")
def filterwise(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cf1.pt"
    save_checkpoint(path, init_model("digits", 1, seed=5), accuracy={"digits": 0.25})
    return path


def test_convert_to_cf_n(filterwise, tmp_path, capsys):
    out = tmp_path / "cf4.pt"
    assert main(["convert", str(filterwise), "--cf", "4", "-o", str(out)]) == 0
    assert "CF-1 -> CF-4" in capsys.readouterr().out
    src, dst = load_checkpoint(filterwise), load_checkpoint(out)
    assert [l["cf"] for l in dst.layers()] == [None, 4, 4, None]
    assert dst.meta["kind"] == "convert" and dst.meta["from_cf"] == [1]
    assert dst.accuracy == {} and dst.meta["parent_accuracy"] == {"digits": 0.25}
    for name in ("layers.4.weight", "layers.8.weight"):
        w0, w1 = src.state_dict[name], dst.state_dict[name]
        assert torch.equal(w0 >= 0, w1 >= 0)
        expect = group_scales(w0, 1).reshape(-1, 4).mean(1)
        assert torch.allclose(group_scales(w1, 4), expect, atol=1e-7)
    # untouched: float layers and batch-norm
    for name in ("layers.0.weight", "layers.3.weight", "layers.3.running_var"):
        assert torch.equal(src.state_dict[name], dst.state_dict[name])
    # the converted model runs and its spec round-trips through the checkpoint
    with torch.no_grad():
        assert dst.model()(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_convert_refuses_a_bad_n(filterwise, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", str(filterwise), "--cf", "0", "-o", str(tmp_path / "o.pt")])
    assert info.value.code == 2
    assert capsys.readouterr().err == \
        "error: convert: argument --cf: must be an integer in [1, 65536], got 0\n"
    for n, message in (("3", "CF n=3 does not divide the 64 output channels"),):
        capsys.readouterr()
        assert main(["convert", str(filterwise), "--cf", n, "-o", str(tmp_path / "o.pt")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and str(filterwise) in err, err
    assert not (tmp_path / "o.pt").exists()


def test_eval_json_and_text(filterwise, capsys):
    assert main(["eval", str(filterwise), "--data", "digits", "--json", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == {"checkpoint", "data", "frames", "float_acc"}
    assert result["frames"] == 50 and result["data"] == "digits"
    assert result["checkpoint"] == str(filterwise) and 0.0 <= result["float_acc"] <= 1.0
    assert main(["eval", str(filterwise), "--data", "digits"]) == 0
    text = capsys.readouterr().out
    assert "449 frames" in text and "float_acc" in text and "stored_acc" in text
