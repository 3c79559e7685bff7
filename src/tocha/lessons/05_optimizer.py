# %%
"""Lesson 5: optimizer.

en: Optimizers: one SGD step by hand, optimizer.step() and zero_grad()
pt: Otimizadores: um passo de SGD à mão, optimizer.step() e zero_grad()
"""

import copy

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    Gradient descent moves every weight a small step against its gradient:
    w <- w - lr * w.grad, where lr is the learning rate. An optimizer does exactly that for
    every parameter it was given. Let us do one step by hand and one with torch.optim.SGD.
    """,
    """
    A descida do gradiente move cada peso um passinho contra o seu gradiente:
    w <- w - lr * w.grad, onde lr é a taxa de aprendizado. Um otimizador faz exatamente isso para
    cada parâmetro que recebeu. Vamos dar um passo à mão e outro com torch.optim.SGD.
    """,
)

# %%
torch.manual_seed(0)
X, y = torch.randn(8, 3), torch.randn(8, 1)
lr = 0.1
by_hand = nn.Linear(3, 1)
with_optimizer = copy.deepcopy(by_hand)  # the same starting weights
before = by_hand.weight.detach().clone()

loss = nn.functional.mse_loss(by_hand(X), y)
loss.backward()
with torch.no_grad():  # an update is not part of the model's computation: do not record it
    for p in by_hand.parameters():
        p -= lr * p.grad

optimizer = torch.optim.SGD(with_optimizer.parameters(), lr=lr)
nn.functional.mse_loss(with_optimizer(X), y).backward()
optimizer.step()

print(t("weight before:       ", "peso antes:          "), [round(v, 6) for v in before.flatten().tolist()])
print(
    t("weight by hand:      ", "peso à mão:          "),
    [round(v, 6) for v in by_hand.weight.flatten().tolist()],
)
print(
    t("weight via SGD.step: ", "peso via SGD.step:  "),
    [round(v, 6) for v in with_optimizer.weight.flatten().tolist()],
)
assert not torch.equal(by_hand.weight, before)  # the step did move the weights
for mine, theirs in zip(by_hand.parameters(), with_optimizer.parameters(), strict=True):
    assert torch.allclose(mine, theirs, atol=1e-7)

# %%
say(
    """
    backward() does not replace .grad: it adds to it. Call it twice without clearing and the
    gradient doubles. That is why a training loop calls optimizer.zero_grad() before every
    backward(): otherwise each step would use the sum of all the gradients so far.
    """,
    """
    O backward() não substitui o .grad: ele soma ao que já está lá. Chame duas vezes sem limpar e
    o gradiente dobra. É por isso que um laço de treino chama optimizer.zero_grad() antes de cada
    backward(): senão cada passo usaria a soma de todos os gradientes até ali.
    """,
)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
nn.functional.mse_loss(model(X), y).backward()
once = model.weight.grad.clone()
nn.functional.mse_loss(model(X), y).backward()  # the same loss again, no zero_grad in between
twice = model.weight.grad.clone()
print(t("grad after 1 backward: ", "grad após 1 backward: "), [round(v, 4) for v in once.flatten().tolist()])
print(t("grad after 2 backwards:", "grad após 2 backwards:"), [round(v, 4) for v in twice.flatten().tolist()])
assert torch.allclose(twice, 2 * once)

# %%
say(
    """
    optimizer.zero_grad() clears them. By default it sets .grad to None rather than to zeros,
    which saves memory; the next backward() starts afresh.
    """,
    """
    O optimizer.zero_grad() limpa os gradientes. Por padrão ele põe .grad em None em vez de zeros,
    o que economiza memória; o próximo backward() começa do zero.
    """,
)
optimizer.zero_grad()
print(t("after zero_grad:", "após zero_grad:"), "model.weight.grad =", model.weight.grad)
assert model.weight.grad is None
nn.functional.mse_loss(model(X), y).backward()
assert torch.allclose(model.weight.grad, once)  # one backward again gives one gradient
