import pytest
import torch
import torch.nn.functional as F

from distill.terms.soft_targets import distillation_loss

LABELS = torch.tensor([[0, 3, -100, 4, 1]])


def test_zero_for_identical_distributions_with_soft_loss_only() -> None:
    logits = torch.randn(1, 5, 7)
    loss = distillation_loss(logits, logits.clone(), LABELS, temperature=2.0, alpha=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_positive_for_different_distributions() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    assert distillation_loss(student, teacher, LABELS, 2.0, 1.0).item() > 1e-3


def test_alpha_zero_is_cross_entropy_on_labelled_positions() -> None:
    torch.manual_seed(1)
    student, teacher = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    mask = LABELS != -100
    expected = F.cross_entropy(student[mask], LABELS[mask])
    assert distillation_loss(student, teacher, LABELS, 2.0, 0.0).item() == pytest.approx(
        expected.item(), rel=1e-6
    )


def test_mix_matches_formula_and_ignores_unlabelled_positions() -> None:
    torch.manual_seed(2)
    student, teacher = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    t, a = 3.0, 0.3
    mask = LABELS != -100
    s, te = student[mask], teacher[mask]
    kl = (F.softmax(te / t, -1) * (F.log_softmax(te / t, -1) - F.log_softmax(s / t, -1))).sum(-1).mean()
    expected = a * t * t * kl + (1 - a) * F.cross_entropy(s, LABELS[mask])
    assert distillation_loss(student, teacher, LABELS, t, a).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    # Changing an unlabelled position changes nothing.
    teacher2 = teacher.clone()
    teacher2[0, 2] += 100.0
    assert distillation_loss(student, teacher2, LABELS, t, a).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_no_gradient_reaches_the_teacher() -> None:
    teacher_net = torch.nn.Linear(4, 7)
    student_net = torch.nn.Linear(4, 7)
    x = torch.randn(1, 5, 4)
    loss = distillation_loss(student_net(x), teacher_net(x), LABELS, 2.0, 0.5)
    loss.backward()
    assert student_net.weight.grad is not None and student_net.weight.grad.abs().sum() > 0
    assert teacher_net.weight.grad is None


def test_batch_without_labels_gives_zero_loss_with_gradient() -> None:
    student = torch.randn(1, 3, 7, requires_grad=True)
    loss = distillation_loss(student, torch.randn(1, 3, 7), torch.full((1, 3), -100), 2.0, 0.5)
    loss.backward()
    assert loss.item() == 0.0 and student.grad is not None
