"""PyTorch interop: from_torch for Sequential-style modules (weights bit-equal, outputs close to
torch's own), .pth loading with weights_only=True only (a pickle that would run code is refused and
never runs), unsupported layers listed, and the Lyapunov .npz weights loading by name."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnlemma as nl
from nnlemma import nn
from nnlemma.torch_io import subset

torch = pytest.importorskip("torch")
T = torch.nn
F32 = np.float32


def _same_weights(tm, ours):
    mine = dict(ours.named_tensors())
    theirs = {k: v for k, v in tm.state_dict().items() if k.split(".")[-1] != "num_batches_tracked"}
    assert set(mine) == set(theirs)
    for k, v in theirs.items():
        assert np.array_equal(mine[k].numpy().view(np.uint32), v.numpy().astype(F32).view(np.uint32)), k


def _outputs_close(tm, ours, x):
    with torch.no_grad():
        want = tm.eval()(torch.tensor(x)).numpy()
    got = nl.run(nl.compile(ours, x).graph, x)[0]
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mlp_converts_with_the_same_names_and_outputs():
    torch.manual_seed(0)
    tm = T.Sequential(T.Linear(4, 8), T.ReLU(), T.Linear(8, 8), T.LeakyReLU(0.2), T.Dropout(0.5),
                      T.Sequential(T.Linear(8, 6), T.Tanh()), T.Linear(6, 3), T.Hardtanh(-0.5, 0.5), T.Sigmoid())
    ours = nl.from_torch(tm)
    _same_weights(tm, ours)
    _outputs_close(tm, ours, np.random.default_rng(0).standard_normal((5, 4)).astype(F32))


def test_cnn_with_batchnorm_and_pooling_converts():
    torch.manual_seed(1)
    tm = T.Sequential(T.Conv2d(2, 4, 3, stride=1, padding=1), T.BatchNorm2d(4), T.ReLU(), T.MaxPool2d(2),
                      T.Conv2d(4, 4, (3, 2), padding=(1, 0), dilation=1), T.AvgPool2d(2, count_include_pad=False),
                      T.Flatten(), T.Linear(8, 2))
    with torch.no_grad():  # non-trivial running statistics
        tm[1].running_mean.uniform_(-1, 1)
        tm[1].running_var.uniform_(0.5, 2)
        tm[1].weight.uniform_(0.5, 1.5)
    ours = nl.from_torch(tm.eval())
    _same_weights(tm, ours)
    _outputs_close(tm, ours, np.random.default_rng(1).standard_normal((2, 2, 8, 8)).astype(F32))


def test_unsupported_layers_are_all_listed():
    tm = T.Sequential(T.Linear(2, 4), T.GELU(), T.Conv2d(4, 4, 1, groups=2))
    with pytest.raises(nl.UnsupportedOpError, match="GELU") as info:
        nl.from_torch(tm)
    assert "groups=2" in str(info.value) and len(info.value.ops) == 2
    with pytest.raises(nl.InputError, match="torch.nn.Module"):
        nl.from_torch("not a module")


def test_load_pth_reads_weights_only(tmp_path):
    torch.manual_seed(2)
    tm = T.Sequential(T.Linear(3, 4), T.ReLU(), T.Linear(4, 1))
    torch.save(tm.state_dict(), tmp_path / "m.pth")
    torch.save({"state_dict": tm.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    for name in ("m.pth", "ckpt.pth"):
        ours.load_state_dict(nl.load_pth(tmp_path / name))
        _same_weights(tm, ours)


class _Payload:
    """Unpickling this would create a file: a stand-in for code in a malicious checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_checkpoint_needing_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(marker)}, path, pickle_module=pickle)
    assert not marker.exists()
    with pytest.raises(nl.ModelLoadError, match="refused.*weights_only"):
        nl.load_pth(path)
    assert not marker.exists()
    with pytest.raises(nl.ModelLoadError, match="no such file"):
        nl.load_pth(tmp_path / "missing.pth")


def test_lyapunov_npz_weights_load_by_name(shared_benchmarks):
    """The pendulum controller (2-8-8-8-1, ReLU) and phi network (2-16-16-8-1, LeakyReLU 0.01)."""
    state = nl.load_npz(shared_benchmarks / "lyapunov" / "pendulum_state_feedback.npz")
    ctrl = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, 1))
    phi = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.01), nn.Linear(16, 16), nn.LeakyReLU(0.01),
                        nn.Linear(16, 8), nn.LeakyReLU(0.01), nn.Linear(8, 1))
    ctrl.load_state_dict(subset(state, "controller."))
    phi.load_state_dict({k: v for k, v in subset(state, "lyapunov.").items() if k != "R"})
    x = np.array([[0.3, -0.2], [0.0, 0.0]], F32)
    W = [state[f"controller.{i}.weight"].astype(np.float64) for i in (0, 2, 4, 6)]
    b = [state[f"controller.{i}.bias"].astype(np.float64) for i in (0, 2, 4, 6)]
    h = x.astype(np.float64)
    for i in range(4):
        h = h @ W[i].T + b[i]
        h = np.maximum(h, 0) if i < 3 else h
    assert np.allclose(nl.run(nl.compile(ctrl, x).graph, x)[0], h, rtol=1e-5, atol=1e-6)
