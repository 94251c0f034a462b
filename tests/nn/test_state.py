"""state_dict / load_state_dict with PyTorch naming, and .npz round trip."""

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn
from nnlemma.kernels import same_bits


def net():
    return nn.Sequential(nn.Conv2d(1, 2, 3, seed=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 3, seed=2))


def test_state_dict_names_and_shapes():
    sd = net().state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "4.weight", "4.bias"]
    assert sd["4.weight"].shape == (3, 8) and sd["0.weight"].shape == (2, 1, 3, 3)


def test_npz_round_trip_is_bit_exact(tmp_path):
    a, b = net(), nn.Sequential(nn.Conv2d(1, 2, 3, seed=9), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                                nn.Linear(8, 3, seed=9))
    nl.save_npz(a.state_dict(), tmp_path / "w.npz")
    b.load_state_dict(nl.load_npz(tmp_path / "w.npz"))
    x = np.random.default_rng(0).normal(size=(2, 1, 4, 4)).astype(np.float32)
    assert same_bits(a(nl.tensor(x)).numpy(), b(nl.tensor(x)).numpy())


def test_load_state_dict_lists_all_problems():
    m = net()
    sd = m.state_dict()
    del sd["0.bias"], sd["4.weight"]
    sd["extra.weight"] = np.zeros(2)
    with pytest.raises(nl.InputError, match=r"missing \['0.bias', '4.weight'\], unexpected \['extra.weight'\]"):
        m.load_state_dict(sd)


def test_load_state_dict_checks_shapes():
    m = net()
    sd = m.state_dict()
    sd["4.weight"] = np.zeros((8, 3))
    with pytest.raises(nl.InputError, match=r"4.weight: expected shape \[3, 8\], got \[8, 3\]"):
        m.load_state_dict(sd)


def test_float64_weights_round_to_nearest_float32():
    m = nn.Linear(1, 1, bias=False)
    m.load_state_dict({"weight": np.array([[0.1]], dtype=np.float64)})
    assert m.weight.numpy()[0, 0] == np.float32(0.1)


def test_bad_npz(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(nl.ModelLoadError, match="bad.npz"):
        nl.load_npz(p)
    with pytest.raises(nl.ModelLoadError, match="no such file"):
        nl.load_npz(tmp_path / "missing.npz")
