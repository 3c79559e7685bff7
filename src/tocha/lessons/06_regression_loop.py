# %%
"""Lesson 6: the training loop.

en: The training loop: a 10 -> 1 linear regression, epoch by epoch
pt: O laço de treino: uma regressão linear de 10 -> 1, época a época
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    Everything so far in one loop. Each epoch: run the model forward, measure the loss, clear
    the old gradients, backpropagate, and let the optimizer take a step. Here the model is
    SimpleLinearModel(10, 1) and the data are 100 random examples with 10 features each.
    """,
    """
    Tudo o que vimos até aqui num laço só. A cada época: passe os dados pelo modelo, meça a perda,
    limpe os gradientes antigos, faça a retropropagação e deixe o otimizador dar um passo. Aqui o
    modelo é SimpleLinearModel(10, 1) e os dados são 100 exemplos aleatórios com 10 atributos cada.
    """,
)


class SimpleLinearModel(nn.Module):
    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


# %%
torch.manual_seed(42)
X = torch.randn(100, 10)
y = torch.randn(100, 1)
model = SimpleLinearModel(10, 1)
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

losses = []
num_epochs = 100
for epoch in range(num_epochs):
    outputs = model(X)  # forward
    loss = criterion(outputs, y)
    optimizer.zero_grad()  # clear last epoch's gradients (backward adds to them)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if (epoch + 1) % 10 == 0:
        print(f"{t('Epoch', 'Época')} [{epoch + 1}/{num_epochs}], {t('Loss', 'Perda')}: {loss.item():.4f}")

assert losses[-1] < losses[0]

# %%
say(
    """
    The loss goes down, but not towards zero: y was drawn at random, independently of X, so
    there is no pattern to find. The best a linear model can do is predict about the average
    of y, and the loss settles near the variance of y.
    """,
    """
    A perda cai, mas não vai a zero: y foi sorteado ao acaso, sem relação com X, então não há
    padrão nenhum para achar. O melhor que um modelo linear consegue é prever mais ou menos a
    média de y, e a perda se acomoda perto da variância de y.
    """,
)
print(
    t(
        "first loss {:.4f} | last loss {:.4f} | variance of y {:.4f}",
        "primeira perda {:.4f} | última perda {:.4f} | variância de y {:.4f}",
    ).format(losses[0], losses[-1], y.var().item())
)
assert losses[-1] > 0.5 * y.var().item()  # far from zero: noise cannot be learned

# %%
say(
    """
    Now data with a real answer: y = X @ w_true + b_true plus a little noise. With a larger
    learning rate (0.1), gradient descent finds weights very close to w_true.
    """,
    """
    Agora dados com uma resposta de verdade: y = X @ w_true + b_true mais um pouco de ruído. Com
    uma taxa de aprendizado maior (0.1), a descida do gradiente encontra pesos bem próximos de
    w_true.
    """,
)
torch.manual_seed(0)
w_true = torch.linspace(-2, 2, 10)
b_true = 0.5
X = torch.randn(200, 10)
y = (X @ w_true + b_true + 0.01 * torch.randn(200)).unsqueeze(1)  # shape (200, 1), like the model's output
model = SimpleLinearModel(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(100):
    loss = criterion(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if (epoch + 1) % 20 == 0:
        print(f"{t('Epoch', 'Época')} [{epoch + 1}/100], {t('Loss', 'Perda')}: {loss.item():.6f}")

fitted = model.linear.weight.detach().flatten()
error = (fitted - w_true).abs().max().item()
print("w_true:", [round(v, 3) for v in w_true.tolist()])
print(t("fitted:", "ajustado:"), [round(v, 3) for v in fitted.tolist()])
print(
    t(
        "bias {:.3f} (true {}) | largest weight error {:.4f}",
        "viés {:.3f} (verdadeiro {}) | maior erro de peso {:.4f}",
    ).format(model.linear.bias.item(), b_true, error)
)
assert error < 0.1
assert abs(model.linear.bias.item() - b_true) < 0.1

# %%
say(
    "tocha runs the first loop of this lesson from one command (--val-fraction 0 trains on all 100 rows, "
    "as here, and one batch of 100 is the whole data; its SGD is torch.optim.SGD's, without momentum, "
    "and tocha also standardises X and y):",
    "O tocha roda o primeiro laço desta lição com um só comando (--val-fraction 0 treina com as 100 "
    "linhas, como aqui, e um lote de 100 já é o conjunto inteiro; o SGD é o do torch.optim.SGD, sem "
    "momentum, e o tocha ainda padroniza X e y):",
)
print(
    "tocha train --data synthetic-regression --model linear --loss mse --optimizer sgd --lr 0.01 \\\n"
    "            --epochs 100 --batch-size 100 --val-fraction 0 --log-every 10"
)
