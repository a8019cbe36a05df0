"""Training (generator/model/train.py, `train`/`eval` commands): accuracy, resume, torchrun, data."""

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.model.checkpoint import load_checkpoint
from generator.model.data import load_dataset
from generator.core.errors import CfgenError, CheckpointError, DataError
from generator.model.train import (DIGITS_EPOCHS, TrainConfig, build_model, lr_at, scaled_milestones,
                             state_path, train)

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "generator", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def cfg(tmp_path, name, **kw):
    kw.setdefault("arch", "digits")
    kw.setdefault("cf", 4)
    kw.setdefault("data", "digits")
    return TrainConfig(output=str(tmp_path / name), progress=False, **kw)


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a).state_dict, load_checkpoint(b).state_dict
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_paper_schedule():
    assert scaled_milestones(320) == [120, 200, 240, 280]
    assert scaled_milestones(32) == [12, 20, 24, 28]
    assert scaled_milestones(160) == [60, 100, 120, 140]
    assert scaled_milestones(1) == []
    c = TrainConfig("nin", 2, "cifar10", "x.pt").finalize()
    assert (c.epochs, c.batch_size, c.lr, c.weight_decay) == (320, 128, 0.01, 1e-5)
    assert [lr_at(c, e) for e in (0, 119, 120, 199, 200, 240, 280, 319)] == \
        [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-5, 1e-6, 1e-6]
    assert TrainConfig("digits", 4, "digits", "x.pt").finalize().epochs == DIGITS_EPOCHS
    assert TrainConfig("digits", 4, "digits", "x.pt", epochs=7).finalize().epochs == 7


@pytest.mark.slow
def test_digits_xnor_cf4_accuracy_and_eval_reproduces_it(tmp_path):
    out = tmp_path / "x.pt"
    t0 = time.perf_counter()
    res = cli("train", "digits", "--cf", 4, "--mode", "xnor", "--data", "digits", "-o", out)
    elapsed = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    assert elapsed < 120, f"training took {elapsed:.0f} s"
    ck = load_checkpoint(out)
    acc = ck.accuracy["digits"]
    assert acc >= 0.90, acc
    assert res.stdout.count("\n") == 1 and f"{acc:.4f}" in res.stdout
    assert ck.meta["complete"] and ck.meta["epochs"] == ck.meta["epochs_done"] == DIGITS_EPOCHS
    assert ck.meta["data"] == "digits" and ck.meta["lr"] == 0.01 and ck.meta["seconds"] > 0
    assert "git_sha" in ck.meta and len(ck.meta["history"]) == DIGITS_EPOCHS
    assert {l["cf"] for l in ck.layers() if l["precision"] == "xnor"} == {4}
    ev = cli("eval", out, "--data", "digits", "--json")
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["float_acc"] == acc  # exactly the stored figure
    assert result["frames"] == 449 and result["data"] == "digits"
    assert result["checkpoint"] == str(out)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    first = train(cfg(tmp_path, "a.pt", epochs=3, stop_after=2))
    assert (first.complete, first.epochs_done) == (False, 2)
    assert first.history[-1]["lr"] == 0.001  # milestones 1, 2, 2: one decay before epoch 2
    ck = load_checkpoint(tmp_path / "a.pt")  # a usable checkpoint every epoch
    assert ck.accuracy == {} and ck.meta["complete"] is False and ck.meta["epochs_done"] == 2
    state = torch.load(state_path(tmp_path / "a.pt"), weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and state["config"]["epochs"] == 3
    resumed = train(cfg(tmp_path, "a.pt", resume=True))
    assert (resumed.complete, resumed.epochs_done) == (True, 3)
    straight = train(cfg(tmp_path, "b.pt", epochs=3))
    assert same_weights(tmp_path / "a.pt", tmp_path / "b.pt")
    assert resumed.accuracy == straight.accuracy
    assert load_checkpoint(tmp_path / "a.pt").meta["history"] == \
        load_checkpoint(tmp_path / "b.pt").meta["history"]
    other = train(cfg(tmp_path, "c.pt", epochs=1, seed=1))
    again = train(cfg(tmp_path, "d.pt", epochs=1, seed=1))
    assert same_weights(tmp_path / "c.pt", tmp_path / "d.pt")  # deterministic per seed
    assert not same_weights(tmp_path / "c.pt", tmp_path / "b.pt")
    assert other.history == again.history


def test_resume_extends_a_finished_run(tmp_path):
    two = train(cfg(tmp_path, "e.pt", epochs=2))
    h2 = load_checkpoint(tmp_path / "e.pt").meta["history"]
    three = train(cfg(tmp_path, "e.pt", resume=True, epochs=3))
    assert (three.complete, three.epochs_done) == (True, 3)
    ck = load_checkpoint(tmp_path / "e.pt")
    assert ck.meta["epochs_done"] == 3 and ck.meta["history"][:2] == h2
    assert ck.meta["lr_milestones"] == [1, 1]  # the schedule of the original run is kept
    assert two.accuracy.keys() == three.accuracy.keys() == {"digits"}
    with pytest.raises(CfgenError, match=r"that run used --lr 0.01, not --lr 0.5"):
        train(cfg(tmp_path, "e.pt", resume=True, lr=0.5))
    with pytest.raises(CfgenError, match=r"that run used --cf 4, not --cf 2"):
        train(cfg(tmp_path, "e.pt", resume=True, cf=2))
    done = train(cfg(tmp_path, "e.pt", resume=True))  # nothing left: no training
    assert done.epochs_done == 3 and len(done.history) == 3


def test_finetune_from_a_filterwise_checkpoint(tmp_path):
    train(cfg(tmp_path, "cf1.pt", cf=1, epochs=1))
    res = train(cfg(tmp_path, "cf4.pt", cf=4, epochs=1, from_ckpt=str(tmp_path / "cf1.pt")))
    ck = load_checkpoint(tmp_path / "cf4.pt")
    assert {l["cf"] for l in ck.layers() if l["precision"] != "float"} == {4}
    assert ck.meta["from"] == str(tmp_path / "cf1.pt") and ck.meta["from_cf"] == [1]
    assert res.complete
    with pytest.raises(CheckpointError, match=r"holds a 'digits' model, not 'nin'"):
        train(cfg(tmp_path, "n.pt", arch="nin", cf=2, epochs=1, from_ckpt=str(tmp_path / "cf1.pt")))


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp.pt"
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "generator", "train", "digits", "--cf", "4", "--data", "digits", "--epochs", "1",
         "--device", "cpu", "--quiet", "-o", str(out)],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 1  # only rank 0 reports
    ck = load_checkpoint(out)
    assert ck.meta["world_size"] == 2 and ck.meta["complete"]
    assert 0.0 <= ck.accuracy["digits"] <= 1.0
    assert torch.load(state_path(out), weights_only=True)["epoch"] == 1


def test_missing_cifar_folder_says_where_to_put_it(tmp_path):
    where = tmp_path / "nowhere"
    res = cli("train", "nin", "--cf", 2, "--data", "cifar10", "--data-dir", where, "-o",
              tmp_path / "n.pt")
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert str(where) in lines[0] and "cifar-10-batches-py" in lines[0]
    assert "data_batch_1" in lines[0] and "test_batch" in lines[0]
    with pytest.raises(DataError, match=r"pass --data-dir DIR"):
        load_dataset("cifar10", None)


def _write_cifar(folder: Path, sizes, rng, protocol=2, str_keys=False):
    """Batches in the official format: dict with data uint8 (N, 3072) and labels list."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in sizes.items():
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        d = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        if str_keys:
            d = {k.decode(): v for k, v in d.items()}
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh, protocol=protocol)
        written[name] = (data, labels)
    return written


def test_synthetic_cifar_loads_and_trains_one_step(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar"
    sizes = {f"data_batch_{i}": 4 for i in range(1, 6)} | {"test_batch": 6}
    written = _write_cifar(root / "cifar-10-batches-py", sizes, rng)
    ds = load_dataset("cifar10", str(root))
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.train.images.dtype == np.uint8
    assert ds.test.images.shape == (6, 3, 32, 32) and len(ds.classes) == 10
    data, labels = written["data_batch_2"]
    assert np.array_equal(ds.train.images[4:8], data.reshape(4, 3, 32, 32))
    assert ds.train.labels[4:8].tolist() == labels
    # channel planes: the first 1024 bytes of a row are the red plane
    assert np.array_equal(ds.train.images[4, 0].ravel(), data[0, :1024])

    init = train(cfg(tmp_path, "nin.pt", arch="nin", cf=2, data="cifar10", data_dir=str(root),
                     epochs=1))
    assert init.epochs_done == 1
    ck = load_checkpoint(tmp_path / "nin.pt")
    assert ck.meta["train_frames"] == 20 and len(ck.meta["history"]) == 1
    assert ck.accuracy.keys() == {"cifar10"}
    assert 0.0 <= ck.accuracy["cifar10"] <= 1.0
    assert ck.meta["batch_size"] == 128  # 20 images: one step
    before, _ = build_model(cfg(tmp_path, "x", arch="nin", cf=2).finalize())  # seed 0, untrained
    assert not torch.equal(before.state_dict()["layers.4.weight"], ck.state_dict["layers.4.weight"])


def test_cifar_batches_written_by_numpy2_and_hostile_pickles(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "c"
    sizes = {f"data_batch_{i}": 3 for i in range(1, 6)} | {"test_batch": 4}
    _write_cifar(folder, sizes, rng, protocol=5, str_keys=True)
    assert load_dataset("cifar10", str(folder)).train.images.shape == (15, 3, 32, 32)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [0]}, fh)
    with pytest.raises(DataError, match=r"test_batch: not a CIFAR-10 python batch .*forbidden"):
        load_dataset("cifar10", str(folder))
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"not a CIFAR-10 python batch"):
        load_dataset("cifar10", str(folder))


def test_digits_conventions():
    ds = load_dataset("digits")
    assert ds.train.images.dtype == np.uint8 and ds.train.images.shape[1:] == (1, 8, 8)
    assert len(ds.train.labels) + len(ds.test.labels) == 1797 and len(ds.test.labels) == 449
    assert ds.train.images.max() == 255 and ds.train.images.min() == 0
    again = load_dataset("digits")  # the split is fixed
    assert np.array_equal(again.test.images, ds.test.images)


def test_eval_refuses_a_mismatched_data_set(tmp_path, capsys):
    from generator.model.checkpoint import save_checkpoint
    from generator.cli import main
    from generator.commands.init import init_model
    from generator.model.evaluate import check_compatible

    path = tmp_path / "digits.pt"
    save_checkpoint(path, init_model("digits", 2, calib_batches=1).eval())
    with pytest.raises(DataError, match=r"cifar10 images are 3x32x32 .* model 'digits' takes 1x8x8"):
        check_compatible(load_checkpoint(path).spec, np.zeros((1, 3, 32, 32), np.uint8), "cifar10")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["eval", str(path), "--data", "digits", "--limit", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err == \
        "error: eval: argument --limit: must be an integer in [1, 1073741824], got 0\n"
