"""The objectives beside SEED against their authors' code: golden vectors in tests/fixtures/objectives/,
written by tests/fixtures/make_objective_goldens.py (the authors' loss run for a few steps on seeded
inputs, tiny Linear layers as networks). Each test replays the same steps with seedzoo's functions."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from seedzoo.training import EmbeddingQueue
from seedzoo.training.methods.bingo import bag_weights, bingo_loss, cutmix
from seedzoo.training.methods.compress import compress_loss
from seedzoo.training.methods.disco import disco_loss
from seedzoo.training.methods.l2 import normalised_l2_loss
from seedzoo.training.methods.simreg import prediction_head, simreg_loss
from seedzoo.training.neighbours import nearest_neighbours
from seedzoo.training.networks import momentum_update
from tests.conftest import rel_max_err

FIXTURES = Path(__file__).parent / "fixtures" / "objectives"
TOL = 1e-5

pytestmark = pytest.mark.usefixtures("single_thread")


def _load(method: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(FIXTURES / f"{method}.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _linear(g: dict[str, torch.Tensor], prefix: str) -> nn.Linear:
    w = g[f"{prefix}.weight"]
    layer = nn.Linear(w.shape[1], w.shape[0])
    layer.load_state_dict({"weight": w, "bias": g[f"{prefix}.bias"]})
    return layer


def _sgd(module: nn.Module, lr: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if p.grad is not None:
                p.sub_(lr * p.grad)
                p.grad = None


def _queue(init: torch.Tensor) -> EmbeddingQueue:
    """A seedzoo queue holding the authors' initial rows (K x D)."""
    q = EmbeddingQueue(*init.shape)
    q.queue.copy_(init)
    return q


@pytest.mark.parametrize("method", ["compress", "simreg", "disco", "bingo"])
def test_fixture_names_the_authors_repository_and_commit(method):
    _, meta = _load(method)
    assert meta["repo"].startswith("github.com/") and len(meta["commit"]) == 40
    assert int(meta["steps"]) >= 3


def test_compress_matches_the_authors_code():
    g, meta = _load("compress")
    temperature, momentum, lr = float(meta["temperature"]), float(meta["momentum"]), float(meta["lr"])
    student, teacher = _linear(g, "student"), _linear(g, "teacher")
    key_encoder = copy.deepcopy(student)
    student_queue, teacher_queue = _queue(g["student_queue_init"]), _queue(g["teacher_queue_init"])
    for s in range(int(meta["steps"])):
        x = g[f"x_{s}"]
        with torch.no_grad():
            t, k = teacher(x), key_encoder(x)
        loss = compress_loss(student(x), t, student_queue.queue, teacher_queue.queue, temperature)
        loss.backward()
        assert rel_max_err(loss.detach().reshape(1), g[f"loss_{s}"]) < TOL
        assert rel_max_err(student.weight.grad, g[f"grad_student_weight_{s}"]) < TOL
        _sgd(student, lr)
        student_queue.enqueue(k)
        teacher_queue.enqueue(t)
        momentum_update(key_encoder, student, momentum)
        assert rel_max_err(student_queue.queue, g[f"student_queue_after_{s}"]) < TOL
        assert rel_max_err(teacher_queue.queue, g[f"teacher_queue_after_{s}"]) < TOL


def test_simreg_matches_the_authors_code():
    g, meta = _load("simreg")
    backbone, teacher = _linear(g, "backbone"), _linear(g, "teacher")
    head = prediction_head(int(meta["width"]), int(meta["target_dim"]))
    head.load_state_dict({k[len("head."):]: v for k, v in g.items() if k.startswith("head.")}, strict=True)
    student = nn.Sequential(backbone, head)
    for s in range(int(meta["steps"])):
        x = g[f"x_{s}"]
        with torch.no_grad():
            t = teacher(x)
        loss = simreg_loss(student(x), t)
        loss.backward()
        assert rel_max_err(loss.detach().reshape(1), g[f"loss_{s}"]) < TOL
        assert rel_max_err(backbone.weight.grad, g[f"grad_backbone_weight_{s}"]) < TOL
        assert rel_max_err(head[0].weight.grad, g[f"grad_head_0_weight_{s}"]) < TOL
        assert rel_max_err(head[-1].weight.grad, g[f"grad_head_last_weight_{s}"]) < TOL
        _sgd(student, float(meta["lr"]))
    final = torch.cat([t.flatten().float() for t in head.state_dict().values()])
    assert rel_max_err(final, g["head_final"]) < TOL  # BN statistics included


def _step_and_enqueue(g, s, loss, student, queue, keys, lr):
    """Backward, check the loss and the student's gradient against step s, step, enqueue, check the queue."""
    loss.backward()
    assert rel_max_err(loss.detach().reshape(1), g[f"loss_{s}"]) < TOL
    assert rel_max_err(student.weight.grad, g[f"grad_student_weight_{s}"]) < TOL
    _sgd(student, lr)
    queue.enqueue(keys)
    assert rel_max_err(queue.queue, g[f"queue_after_{s}"]) < TOL


def test_disco_matches_the_authors_code():
    g, meta = _load("disco")
    temperature, momentum = float(meta["temperature"]), float(meta["momentum"])
    student, teacher = _linear(g, "student"), _linear(g, "teacher")
    key_encoder = copy.deepcopy(student)
    queue = _queue(g["queue_init"])
    for s in range(int(meta["steps"])):
        x_q, x_k = g[f"x_q_{s}"], g[f"x_k_{s}"]
        with torch.no_grad():
            momentum_update(key_encoder, student, momentum)  # before the keys, as MoCo
            k, t_q, t_k = key_encoder(x_k), teacher(x_q), teacher(x_k)
        loss = disco_loss(student(x_q), k, student(x_k), t_q, t_k, queue.queue, temperature)
        _step_and_enqueue(g, s, loss, student, queue, k, float(meta["lr"]))
        assert rel_max_err(key_encoder.weight.detach(), g[f"key_encoder_weight_after_{s}"]) < TOL


def test_bingo_matches_the_authors_code():
    g, meta = _load("bingo")
    temperature = float(meta["temperature"])
    weights = tuple(float(w) for w in meta["lam"].split(","))
    student, teacher = _linear(g, "student"), _linear(g, "teacher")
    queue = _queue(g["queue_init"])
    for s in range(int(meta["steps"])):
        own, neighbour = bag_weights(int(g[f"epoch_{s}"]), weights, warmup_epochs=11)
        with torch.no_grad():
            k, k_nb = teacher(g[f"key_{s}"].flatten(1)), teacher(g[f"neighbour_key_{s}"].flatten(1))
        q, q_nb, q_mix = (student(g[f"{v}_{s}"].flatten(1)) for v in ("query", "neighbour_query", "mixed_query"))
        loss = bingo_loss(q, q_nb, q_mix, k, k_nb, queue.queue, temperature, own, neighbour,
                          float(g[f"mix_lam_{s}"]))
        _step_and_enqueue(g, s, loss, student, queue, k, float(meta["lr"]))


def test_bingo_fixture_covers_both_sides_of_the_warmup():
    g, _ = _load("bingo")
    epochs = [int(g[f"epoch_{s}"]) for s in range(3)]
    assert min(epochs) < 11 <= max(epochs)
    assert bag_weights(10, (0.5, 0.5), 11) == (1.0, 0.0)
    assert bag_weights(11, (0.5, 0.5), 11) == (0.5, 0.5)


# --- cases computed by hand ---------------------------------------------------------------------------

def test_normalised_l2_loss_is_two_minus_two_cosine():
    s, t = torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([[3.0, 4.0], [0.0, -1.0]])
    expected = ((2 - 2 * 0.6) + (2 - 2 * -1.0)) / 2
    assert math.isclose(normalised_l2_loss(s, t).item(), expected, rel_tol=1e-6)


def test_cutmix_pastes_one_box_and_returns_the_area_left():
    images, others = torch.zeros(4, 3, 16, 12), torch.ones(4, 3, 16, 12)
    mixed, lam = cutmix(images, others, torch.Generator().manual_seed(0))
    pasted = mixed[0, 0]
    assert torch.equal(mixed, mixed[:1].expand_as(mixed))  # the same box for the whole batch
    assert math.isclose(lam, 1 - float(pasted.mean()), rel_tol=1e-6)
    rows, cols = pasted.any(1).nonzero().flatten(), pasted.any(0).nonzero().flatten()
    assert len(rows) and len(cols)  # seed 0 pastes a non-empty box, so the rectangle check below is not vacuous
    assert pasted[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()  # the pasted region is one rectangle
    again, lam2 = cutmix(images, others, torch.Generator().manual_seed(0))
    assert torch.equal(again, mixed) and lam2 == lam
    lams = {cutmix(images, others, torch.Generator().manual_seed(i))[1] for i in range(8)}
    assert len(lams) > 1 and all(0 <= v <= 1 for v in lams)


def test_nearest_neighbours_exclude_self_and_rank_by_cosine():
    f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    bags = nearest_neighbours(f, 2)
    assert bags[:4, 0].tolist() == [1, 0, 3, 2] and bags[4, 0] in (2, 3)
    assert all(i not in row for i, row in enumerate(bags.tolist()))
    assert bags[0].tolist() == [1, 3]
    assert torch.equal(nearest_neighbours(f, 2, rows=range(2, 5)), bags[2:5])  # a slice of the rows
    with pytest.raises(ValueError, match="neighbours"):
        nearest_neighbours(f, 5)
