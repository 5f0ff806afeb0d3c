"""The pieces that make a warm generator's training step cheap: the one-pass pointer loss, byte dropout,
fused AdamW. Each must compute what the plain version computes."""
import pytest
import torch

from xaug.dropout import ByteDropout, use_byte_dropout
from xaug.pointer_loss import ROWS, _PointerSmoothedNLL, pointer_smoothed_nll
from xaug.training import adamw


def reference_loss(z, gold, gate, copy_prob, eps):
    """The loss written with autograd's ops (what xaug.warm computed before the one-pass version)."""
    logp = torch.log_softmax(z, -1)
    p = gate * logp.gather(1, gold[:, None])[:, 0].exp() + (1 - gate) * copy_prob
    return -(1 - eps) * torch.log(p.clamp(min=1e-9)) - eps * logp.mean(-1)


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("n", [9, 2 * ROWS + 7])  # one block; several, the last one partial
def test_pointer_loss_value_and_gradients_equal_the_autograd_formula(eps, n):
    torch.manual_seed(0)
    z = torch.randn(n, 13, dtype=torch.double, requires_grad=True)
    gold = torch.randint(0, 13, (n,))
    gate = torch.rand(n, dtype=torch.double, requires_grad=True)
    copy_prob = torch.rand(n, dtype=torch.double, requires_grad=True)
    ours = _PointerSmoothedNLL.apply(z, gold, gate, copy_prob, eps)
    ref = reference_loss(z, gold, gate, copy_prob, eps)
    torch.testing.assert_close(ours, ref)
    weights = torch.randn(n, dtype=torch.double)
    for a, b in zip(torch.autograd.grad((ours * weights).sum(), (z, gate, copy_prob)),
                    torch.autograd.grad((ref * weights).sum(), (z, gate, copy_prob))):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda *x: _PointerSmoothedNLL.apply(x[0], gold, x[1], x[2], eps),
                                    (z, gate, copy_prob))


def test_pointer_loss_of_a_gold_piece_outside_the_softmax_is_the_pointer_alone():
    """A softmax over part of the vocabulary (the training targets' pieces): a gold id >= V gets no vocabulary
    probability, only the copy mass, and its gradients are those of that formula."""
    torch.manual_seed(3)
    z = torch.randn(9, 13, dtype=torch.double, requires_grad=True)
    gold = torch.tensor([0, 12, 13, 20, 5, 14, 3, 30, 7])  # four outside the 13 logits
    gate = torch.rand(9, dtype=torch.double, requires_grad=True)
    copy_prob = torch.rand(9, dtype=torch.double, requires_grad=True)
    inside = gold < 13
    logp = torch.log_softmax(z, -1)
    q_gold = torch.where(inside, logp.gather(1, gold.clamp(max=12)[:, None])[:, 0].exp(), 0.0)
    ref = -0.9 * torch.log(gate * q_gold + (1 - gate) * copy_prob) - 0.1 * logp.mean(-1)
    ours = _PointerSmoothedNLL.apply(z, gold, gate, copy_prob, 0.1)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours[~inside], (-0.9 * torch.log((1 - gate) * copy_prob) - 0.1 * logp.mean(-1))[~inside])
    for a, b in zip(torch.autograd.grad(ours.sum(), (z, gate, copy_prob)),
                    torch.autograd.grad(ref.sum(), (z, gate, copy_prob))):
        torch.testing.assert_close(a, b)


def test_pointer_loss_without_pointer_is_label_smoothed_cross_entropy():
    torch.manual_seed(1)
    z = torch.randn(6, 20)
    gold = torch.randint(0, 20, (6,))
    torch.testing.assert_close(pointer_smoothed_nll(z, gold, eps=0.1),
                               torch.nn.functional.cross_entropy(z, gold, label_smoothing=0.1, reduction="none"),
                               rtol=1e-5, atol=1e-5)  # torch smooths over all classes, as this loss does


def test_pointer_loss_on_bf16_logits_returns_bf16_gradients_in_float32_arithmetic():
    torch.manual_seed(2)
    z = torch.randn(5, 30).bfloat16().requires_grad_()
    gold = torch.randint(0, 30, (5,))
    loss = pointer_smoothed_nll(z, gold, torch.full((5,), 0.7), torch.full((5,), 0.1), eps=0.1)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert z.grad.dtype == torch.bfloat16
    ref = reference_loss(z.detach().float(), gold, torch.full((5,), 0.7), torch.full((5,), 0.1), 0.1)
    torch.testing.assert_close(loss.detach(), ref)


def test_byte_dropout_drops_at_its_rate_keeps_the_mean_and_follows_the_seed():
    drop = ByteDropout(0.1)
    assert drop.threshold == 26 and "26/256" in repr(drop)
    x = torch.ones(200_000)
    torch.manual_seed(3)
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 26 / 256) < 0.003
    assert abs(y.mean().item() - 1.0) < 0.01  # kept elements are scaled up by 256 / 230
    torch.manual_seed(3)
    assert torch.equal(drop(x), y)
    drop.eval()
    assert drop(x) is x
    assert ByteDropout(0.0).train()(x) is x
    with pytest.raises(ValueError):
        ByteDropout(1.0)


def test_use_byte_dropout_replaces_every_torch_dropout():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.2),
                                torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.ReLU()))
    use_byte_dropout(model)
    kinds = [type(m) for m in model.modules()]
    assert torch.nn.Dropout not in kinds and kinds.count(ByteDropout) == 2
    assert model[1].p == 0.2 and model[2][0].p == 0.1


def test_fused_adamw_takes_the_same_steps_as_the_plain_one():
    torch.manual_seed(4)
    a = [torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    fused, plain = adamw(a, 1e-2), torch.optim.AdamW(b, lr=1e-2, weight_decay=0.01, foreach=False)
    assert fused.defaults["fused"]
    for _ in range(5):
        for params, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            (params[0].sum(0) * params[1]).square().sum().backward()
            opt.step()
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
