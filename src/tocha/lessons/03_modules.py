# %%
"""Lesson 3: modules.

en: Modules: nn.Module, nn.Parameter and a linear model
pt: Módulos: nn.Module, nn.Parameter e um modelo linear
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A model in PyTorch is a class derived from nn.Module. Its __init__ creates the layers and
    weights; its forward() says how an input becomes an output. Calling model(x) runs forward().
    """,
    """
    Um modelo no PyTorch é uma classe derivada de nn.Module. O __init__ cria as camadas e os pesos;
    o forward() diz como uma entrada vira uma saída. Chamar model(x) executa o forward().
    """,
)

# %%
say(
    """
    Weights are nn.Parameter: a tensor that the module registers when you assign it as an
    attribute. parameters() lists exactly those, and that list is what an optimizer will update.
    A plain tensor attribute is not a parameter: it is never trained.
    """,
    """
    Pesos são nn.Parameter: um tensor que o módulo registra quando você o atribui como atributo.
    O parameters() lista exatamente esses, e é essa lista que um otimizador vai atualizar. Um
    atributo que é um tensor comum não é parâmetro: nunca é treinado.
    """,
)


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor([2.0]))  # registered: trained
        self.offset = torch.tensor([1.0])  # a plain tensor: not registered

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor + self.offset


scale = Scale()
names = [name for name, _ in scale.named_parameters()]
print(
    t("Scale parameters:", "parâmetros de Scale:"), names, "| scale(3) =", scale(torch.tensor([3.0])).tolist()
)
assert names == ["factor"]
assert scale.factor.requires_grad  # a Parameter wants gradients by default
assert scale(torch.tensor([3.0])).tolist() == [7.0]

# %%
say(
    """
    Layers are modules too, and a module inside a module brings its parameters along.
    SimpleLinearModel wraps nn.Linear(10, 1): it computes y = x @ W.T + b with W of shape
    (1, 10) and b of shape (1,), so 10 + 1 = 11 numbers to learn.
    """,
    """
    Camadas também são módulos, e um módulo dentro de outro leva junto os seus parâmetros.
    SimpleLinearModel envolve nn.Linear(10, 1): calcula y = x @ W.T + b com W de forma (1, 10)
    e b de forma (1,), ou seja, 10 + 1 = 11 números para aprender.
    """,
)


class SimpleLinearModel(nn.Module):
    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


torch.manual_seed(0)
model = SimpleLinearModel(10, 1)
for name, p in model.named_parameters():
    print(f"{name:<14} {t('shape', 'forma')} {tuple(p.shape)}")
total = sum(p.numel() for p in model.parameters())
print(t("parameters:", "parâmetros:"), total)
assert [name for name, _ in model.named_parameters()] == ["linear.weight", "linear.bias"]
assert total == 11

# %%
say(
    """
    A batch of 4 inputs with 10 features each, shape (4, 10), gives 4 outputs, shape (4, 1):
    the first axis is the batch, and the layer works on every row at once.
    """,
    """
    Um lote de 4 entradas com 10 atributos cada, forma (4, 10), dá 4 saídas, forma (4, 1): o
    primeiro eixo é o lote, e a camada trabalha em todas as linhas de uma vez.
    """,
)
batch = torch.randn(4, 10)
out = model(batch)
print("model(batch).shape =", tuple(out.shape))
assert out.shape == (4, 1)
manual = batch @ model.linear.weight.T + model.linear.bias
assert torch.allclose(out, manual)  # nn.Linear is exactly x @ W.T + b
