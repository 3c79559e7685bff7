# %%
"""Lesson 11: activation functions.

en: Activations: ReLU, LeakyReLU, Sigmoid, Tanh, derivatives, vanishing gradients
pt: Ativações: ReLU, LeakyReLU, Sigmoid, Tanh, derivadas e o gradiente que some
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    Without a nonlinear function between them, stacked linear layers collapse into a single
    linear layer. Activations are that nonlinearity. Their derivatives matter just as much:
    backpropagation multiplies by them at every layer.
    """,
    """
    Sem uma função não linear entre elas, camadas lineares empilhadas equivalem a uma única
    camada linear. As ativações são essa não linearidade. As derivadas delas importam tanto
    quanto: a retropropagação multiplica por elas em cada camada.
    """,
)

# %%
x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
activations = {
    "ReLU": nn.ReLU(),
    "LeakyReLU": nn.LeakyReLU(0.01),
    "Sigmoid": nn.Sigmoid(),
    "Tanh": nn.Tanh(),
}
values, slopes = {}, {}
print("x:", x.tolist())
for name, f in activations.items():
    (grad,) = torch.autograd.grad(f(x).sum(), x)  # sum: each output depends on its own x only
    values[name], slopes[name] = f(x).detach(), grad
    print(f"{name:<10} f(x) {[round(v, 3) for v in values[name].tolist()]}")
    print(f"{'':<10} f'(x) {[round(v, 3) for v in grad.tolist()]}")

sig, tanh = torch.sigmoid(x.detach()), torch.tanh(x.detach())
assert slopes["ReLU"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # PyTorch takes 0 as the slope at 0
assert torch.allclose(slopes["LeakyReLU"], torch.tensor([0.01, 0.01, 0.01, 1.0, 1.0]))
assert torch.allclose(slopes["Sigmoid"], sig * (1 - sig)) and slopes["Sigmoid"].max() == 0.25
assert torch.allclose(slopes["Tanh"], 1 - tanh**2) and slopes["Tanh"].max() == 1.0

# %%
say(
    """
    The sigmoid's slope is at most 0.25, and nearly 0 for large inputs. Through 20 layers the
    gradient is multiplied by such a number 20 times, so it vanishes before reaching the first
    layers, which then barely learn. ReLU's slope is exactly 1 wherever it is active. Two
    stacks of 20 layers, same weights (He initialisation, made for ReLU), only the activation
    differs:
    """,
    """
    A inclinação da sigmoide é no máximo 0.25, e quase 0 para entradas grandes. Ao longo de 20
    camadas o gradiente é multiplicado por um número assim 20 vezes, e some antes de chegar às
    primeiras camadas, que quase não aprendem. A inclinação da ReLU é exatamente 1 onde ela está
    ativa. Duas pilhas de 20 camadas, mesmos pesos (inicialização de He, pensada para a ReLU), só
    a ativação muda:
    """,
)


def gradient_norms(activation: type[nn.Module], depth: int = 20, width: int = 32) -> list[float]:
    """The gradient norm of each layer's weights, first layer first."""
    torch.manual_seed(0)
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # He init: keeps ReLU signals steady
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    net = nn.Sequential(*layers)
    net(torch.randn(64, width)).pow(2).mean().backward()
    return [layer.weight.grad.norm().item() for layer in net if isinstance(layer, nn.Linear)]


sigmoid_norms, relu_norms = gradient_norms(nn.Sigmoid), gradient_norms(nn.ReLU)
print(
    t(
        "Sigmoid: first layer {:.1e}, last layer {:.1e}",
        "Sigmoid: primeira camada {:.1e}, última camada {:.1e}",
    ).format(sigmoid_norms[0], sigmoid_norms[-1])
)
print(
    t(
        "ReLU:    first layer {:.1e}, last layer {:.1e}",
        "ReLU:    primeira camada {:.1e}, última camada {:.1e}",
    ).format(relu_norms[0], relu_norms[-1])
)
assert sigmoid_norms[0] < 1e-6 * relu_norms[0]
assert sigmoid_norms[0] < 1e-6 * sigmoid_norms[-1]  # it shrank on its way down
assert 0.1 < relu_norms[0] / relu_norms[-1] < 10  # it did not
