"""seed_loss and the queue against the official code's golden vectors, plus cases computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

import seedzoo
from seedzoo.training import EmbeddingQueue, QueueSizeError, info_nce_loss, seed_loss
from tests.conftest import rel_max_err


def _load(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.mark.parametrize("name", ["seed_loss_soft", "seed_loss_official_default"])
def test_seed_loss_matches_official_golden(golden_dir, name):
    g, meta = _load(golden_dir / f"{name}.safetensors")
    tau_s, tau_t = float(meta["student_temperature"]), float(meta["teacher_temperature"])
    dim, size = int(meta["dim"]), int(meta["queue_size"])
    student, teacher = torch.nn.Linear(32, dim), torch.nn.Linear(32, dim)
    student.load_state_dict({"weight": g["student.weight"], "bias": g["student.bias"]})
    teacher.load_state_dict({"weight": g["teacher.weight"], "bias": g["teacher.bias"]})
    queue = EmbeddingQueue(size, dim)
    queue.queue.copy_(g["queue_init"].T)  # official layout is dim x K
    for s in range(int(meta["steps"])):
        x = g[f"x_{s}"]
        student.zero_grad()
        with torch.no_grad():
            t = teacher(x)
        loss = seed_loss(student(x), t, queue.queue, tau_s, tau_t)
        loss.backward()
        queue.enqueue(t)
        assert rel_max_err(loss.detach().reshape(1), g[f"loss_{s}"]) < 1e-5
        assert rel_max_err(student.weight.grad, g[f"grad_student_weight_{s}"]) < 1e-5
        assert torch.equal(queue.queue, g[f"queue_after_{s}"].T)
        assert int(queue.ptr) == int(g[f"queue_ptr_after_{s}"])


def test_seed_loss_is_exported_from_the_package():
    assert seedzoo.seed_loss is seed_loss


def test_hand_computed_two_column_case():
    # D = 2, one image, one queue row. s = (1, 0); t = (0.6, 0.8); queue row (0, 1).
    s, t, q = torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    tau_s, tau_t = 0.5, 0.25
    ls = torch.tensor([0.6, 0.0]) / tau_s  # s.t, s.q
    lt = torch.tensor([1.0, 0.8]) / tau_t  # t.t, t.q
    p = torch.softmax(lt, 0)
    expected = -(p * torch.log_softmax(ls, 0)).sum()
    got = seed_loss(s, t, q, tau_s, tau_t)
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-6)


def test_low_teacher_temperature_equals_infonce_against_teacher():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    q = F.normalize(torch.randn(32, 8, generator=g), dim=1)
    expected = info_nce_loss(s, t, q, temperature=0.2)
    assert torch.allclose(seed_loss(s, t, q, 0.2, 1e-6), expected, rtol=1e-6)


def test_teacher_gets_no_gradient():
    s = torch.randn(4, 8, requires_grad=True)
    t = torch.randn(4, 8, requires_grad=True)
    seed_loss(s, t, F.normalize(torch.randn(16, 8), dim=1)).backward()
    assert s.grad is not None and t.grad is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_under_autocast_give_the_fp32_result(dtype):
    g = torch.Generator().manual_seed(1)
    s, t = (torch.randn(8, 16, generator=g).to(dtype) for _ in range(2))
    q = F.normalize(torch.randn(64, 16, generator=g), dim=1).to(dtype)
    expected = seed_loss(s.float(), t.float(), q.float(), 0.2, 1e-4)
    with torch.autocast("cpu", dtype=dtype):
        got = seed_loss(s, t, q, 0.2, 1e-4)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert torch.equal(got, expected)


def test_queue_is_fifo_and_wraps():
    queue = EmbeddingQueue(4, 2)
    a, b, c = (F.normalize(torch.randn(2, 2), dim=1) for _ in range(3))
    for x in (a, b, c):
        queue.enqueue(x)
    assert torch.allclose(queue.queue, torch.cat([c, b])) and int(queue.ptr) == 2


def test_queue_init_is_seeded_unit_vectors():
    q1, q2, q3 = EmbeddingQueue(16, 8, seed=3), EmbeddingQueue(16, 8, seed=3), EmbeddingQueue(16, 8, seed=4)
    assert torch.equal(q1.queue, q2.queue) and not torch.equal(q1.queue, q3.queue)
    assert torch.allclose(q1.queue.norm(dim=1), torch.ones(16))


def test_queue_size_not_multiple_of_batch_is_a_clear_error():
    with pytest.raises(QueueSizeError, match="not a multiple of the global batch 3"):
        EmbeddingQueue(8, 2).enqueue(torch.randn(3, 2))
