# %%
"""Lesson 4: loss.

en: Loss functions: mean squared error, batches and L1
pt: Funções de perda: erro quadrático médio, lotes e L1
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A loss function turns "how wrong is the model?" into one number that training pushes down.
    For predicting numbers, the usual one is the mean squared error (MSE): the average of
    (prediction - target)².
    """,
    """
    Uma função de perda transforma "quanto o modelo está errando?" em um único número, que o
    treino tenta diminuir. Para prever números, a mais comum é o erro quadrático médio (MSE): a
    média de (previsão - alvo)².
    """,
)

# %%
say(
    "A prediction of 2 when the answer is 3: the error is -1, squared it is 1.",
    "Uma previsão de 2 quando a resposta é 3: o erro é -1, ao quadrado dá 1.",
)
criterion = nn.MSELoss()
loss = criterion(torch.tensor([2.0]), torch.tensor([3.0]))
print("nn.MSELoss()(tensor([2.]), tensor([3.])) =", loss.item())
assert loss.item() == 1.0

# %%
say(
    """
    Over a batch, the squared errors are averaged. Predictions 2, 3, 4 against targets 3, 3, 6:
    errors -1, 0, -2, squares 1, 0, 4, mean 5/3. With reduction="sum" you get the total instead.
    """,
    """
    Num lote, os erros ao quadrado viram uma média. Previsões 2, 3, 4 contra alvos 3, 3, 6: erros
    -1, 0, -2, quadrados 1, 0, 4, média 5/3. Com reduction="sum" você obtém o total.
    """,
)
predictions = torch.tensor([2.0, 3.0, 4.0])
targets = torch.tensor([3.0, 3.0, 6.0])
mse = criterion(predictions, targets)
total = nn.MSELoss(reduction="sum")(predictions, targets)
print(f"MSE (mean) = {mse.item():.4f} | MSE (sum) = {total.item():.1f}")
assert torch.isclose(mse, torch.tensor(5 / 3))
assert total.item() == 5.0
assert torch.isclose(mse, ((predictions - targets) ** 2).mean())

# %%
say(
    """
    The L1 loss averages the absolute errors instead: (1 + 0 + 2) / 3 = 1. The difference shows
    with an outlier: one error of 10 among errors of 1 weighs 100 in MSE but only 10 in L1. MSE
    works hard to fix large mistakes; L1 is calmer about them.
    """,
    """
    A perda L1 faz a média dos erros absolutos: (1 + 0 + 2) / 3 = 1. A diferença aparece com um
    ponto fora da curva: um erro de 10 no meio de erros de 1 pesa 100 no MSE, mas só 10 no L1. O
    MSE se esforça muito para corrigir erros grandes; o L1 é mais tranquilo com eles.
    """,
)
l1 = nn.L1Loss()(predictions, targets)
print("L1 =", l1.item())
assert l1.item() == 1.0
errors_pred, errors_true = torch.tensor([1.0, 1.0, 1.0, 10.0]), torch.zeros(4)
mse_outlier = criterion(errors_pred, errors_true).item()
l1_outlier = nn.L1Loss()(errors_pred, errors_true).item()
print(f"{t('errors', 'erros')} 1, 1, 1, 10: MSE = {mse_outlier:.2f} | L1 = {l1_outlier:.2f}")
assert mse_outlier == (1 + 1 + 1 + 100) / 4 and l1_outlier == (1 + 1 + 1 + 10) / 4
assert mse_outlier > 7 * l1_outlier  # the outlier dominates the MSE
