# %%
"""Lesson 8: softmax and cross-entropy.

en: Softmax, LogSoftmax + NLLLoss, and cross-entropy
pt: Softmax, LogSoftmax + NLLLoss e entropia cruzada
"""

import torch
import torch.nn.functional as F
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A classifier outputs one raw score per class, called a logit. Softmax turns the logits
    into probabilities: exponentiate each one, divide by the total. They are positive and
    sum to 1, and the largest logit gets the largest probability.
    """,
    """
    Um classificador devolve uma pontuação bruta por classe, chamada logit. O softmax transforma
    os logits em probabilidades: aplica a exponencial a cada um e divide pelo total. Elas são
    positivas, somam 1, e o maior logit fica com a maior probabilidade.
    """,
)

# %%
logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])  # 2 examples, 3 classes
probs = torch.softmax(logits, dim=1)  # dim=1: over the classes of each example
print("logits =", [[round(v, 4) for v in row] for row in logits.tolist()])
print("softmax =", [[round(p, 4) for p in row] for row in probs.tolist()])
print("sums =", [round(s, 4) for s in probs.sum(dim=1).tolist()])
assert torch.allclose(probs.sum(dim=1), torch.ones(2), atol=1e-6)
assert (probs > 0).all()
assert torch.equal(probs.argmax(dim=1), logits.argmax(dim=1))

# %%
say(
    """
    Only differences between logits matter: adding the same number to all of them gives the
    same probabilities. PyTorch uses this to subtract the largest one and avoid overflow.
    """,
    """
    Só as diferenças entre os logits importam: somar o mesmo número a todos dá as mesmas
    probabilidades. O PyTorch usa isso para subtrair o maior deles e evitar estouro numérico.
    """,
)
shifted = torch.softmax(logits + 100, dim=1)
print("softmax(logits + 100) == softmax(logits):", torch.allclose(shifted, probs))
assert torch.allclose(shifted, probs, atol=1e-6)

# %%
say(
    """
    To train, we want the probability of the correct class to be high, so the loss is minus its
    log: the negative log-likelihood. nn.LogSoftmax followed by nn.NLLLoss computes that, and
    F.cross_entropy does both steps in one, straight from the logits. Same number.
    """,
    """
    No treino, queremos que a probabilidade da classe correta seja alta, então a perda é menos o
    log dela: a log-verossimilhança negativa. nn.LogSoftmax seguido de nn.NLLLoss calcula isso, e
    F.cross_entropy faz as duas etapas de uma vez, direto dos logits. O mesmo número.
    """,
)
targets = torch.tensor([0, 1])  # the correct class of each example
two_steps = nn.NLLLoss()(nn.LogSoftmax(dim=1)(logits), targets)
one_step = F.cross_entropy(logits, targets)
by_hand = -torch.log(probs[torch.arange(2), targets]).mean()
print(f"NLLLoss(LogSoftmax(logits)) = {two_steps.item():.6f}")
print(f"F.cross_entropy(logits)     = {one_step.item():.6f}")
print(f"-log(p[correct]).mean()     = {by_hand.item():.6f}")
assert torch.allclose(two_steps, one_step)
assert torch.allclose(one_step, by_hand)

# %%
say(
    """
    A common mistake: applying softmax before cross_entropy. cross_entropy already contains
    the softmax, so the loss comes out wrong (and learns slowly).
    """,
    """
    Um erro comum: aplicar softmax antes do cross_entropy. O cross_entropy já contém o softmax,
    então a perda sai errada (e o aprendizado fica lento).
    """,
)
wrong = F.cross_entropy(probs, targets)
print(f"F.cross_entropy(softmax(logits)) = {wrong.item():.6f}  ({t('not', 'e não')} {one_step.item():.6f})")
assert not torch.allclose(wrong, one_step)
