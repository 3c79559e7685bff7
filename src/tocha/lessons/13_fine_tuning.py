# %%
"""Lesson 13: fine-tuning.

en: Fine-tuning: freeze a trained backbone, replace the head, train only the head
pt: Fine-tuning: congele uma base treinada, troque a cabeça e treine só a cabeça
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A trained network is a backbone, which turns inputs into useful features, and a head, which
    turns features into the answer. For a new task with other classes, keep the backbone, give
    it a new head, and train only the head: fast, and it needs little data.
    """,
    """
    Uma rede treinada é uma base (backbone), que transforma entradas em atributos úteis, e uma
    cabeça (head), que transforma esses atributos na resposta. Para uma tarefa nova, com outras
    classes, mantenha a base, dê a ela uma cabeça nova e treine só a cabeça: é rápido e pede
    poucos dados.
    """,
)


class Net(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 60) -> list[float]:
    # Only the parameters that still want gradients go to the optimizer.
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(X).argmax(dim=1) == y).float().mean().item()


# %%
say(
    "First, a model trained briefly on a 4-class task (synthetic data, seeded):",
    "Primeiro, um modelo treinado rapidinho numa tarefa de 4 classes (dados sintéticos, com semente):",
)
torch.manual_seed(0)
X = torch.randn(256, 8)
y_old = (X @ torch.randn(8, 4)).argmax(dim=1)  # the class is a fixed function of the input
model = Net(num_classes=4)
losses = train(model, X, y_old)
print(
    t(
        "4 classes: loss {:.4f} -> {:.4f}, accuracy {:.2f}",
        "4 classes: perda {:.4f} -> {:.4f}, acurácia {:.2f}",
    ).format(losses[0], losses[-1], accuracy(model, X, y_old))
)
assert losses[-1] < losses[0]

# %%
say(
    """
    Now the new task has 3 classes. Freeze the backbone (requires_grad False: no gradients, so
    no optimizer can change it) and replace the head with a fresh nn.Linear(32, 3).
    """,
    """
    Agora a tarefa nova tem 3 classes. Congele a base (requires_grad False: sem gradientes,
    nenhum otimizador consegue mudá-la) e troque a cabeça por um nn.Linear(32, 3) novinho.
    """,
)
y_new = (X @ torch.randn(8, 3)).argmax(dim=1)
for p in model.backbone.parameters():
    p.requires_grad = False
model.head = nn.Linear(32, 3)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(
    t("trainable parameters:", "parâmetros treináveis:"),
    trainable,
    t("of", "de"),
    sum(p.numel() for p in model.parameters()),
)
assert trainable == 32 * 3 + 3

backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
losses = train(model, X, y_new)
print(
    t(
        "3 classes, head only: loss {:.4f} -> {:.4f}, accuracy {:.2f}",
        "3 classes, só a cabeça: perda {:.4f} -> {:.4f}, acurácia {:.2f}",
    ).format(losses[0], losses[-1], accuracy(model, X, y_new))
)

# %%
say(
    "The backbone is exactly as it was; the head learned.",
    "A base está exatamente como estava; a cabeça aprendeu.",
)
backbone_same = all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone_before.items())
head_changed = all(not torch.equal(v, model.head.state_dict()[k]) for k, v in head_before.items())
print(
    t("backbone unchanged:", "backbone inalterado:"),
    backbone_same,
    t("| head changed:", "| cabeça mudou:"),
    head_changed,
)
assert backbone_same and head_changed
assert losses[-1] < losses[0]

# %%
say(
    """
    A model with batch normalisation needs one more step: model.eval() on the frozen part, or
    its running statistics keep moving even without gradients. With tocha, fine-tuning a
    trained run is one command:
    """,
    """
    Um modelo com batch normalization precisa de mais um passo: model.eval() na parte congelada,
    senão as estatísticas acumuladas continuam mudando mesmo sem gradientes. Com o tocha, fazer
    fine-tuning de uma execução treinada é um comando só:
    """,
)
print("tocha train --init-from RUN --freeze backbone --data NEW_DATA")
