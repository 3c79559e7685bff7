# %%
"""Lesson 2: autograd.

en: Autograd: requires_grad, backward and the chain rule
pt: Autograd: requires_grad, backward e a regra da cadeia
"""

import torch

from tocha.lessons.text import say, t

say(
    """
    Training needs derivatives: how much the loss changes when each weight moves a little.
    PyTorch computes them for you. Mark a tensor with requires_grad=True, compute something
    from it, call .backward() on the result, and the derivative appears in the tensor's .grad.
    """,
    """
    Treinar exige derivadas: quanto a perda muda quando cada peso se mexe um pouquinho. O PyTorch
    calcula isso para você. Marque um tensor com requires_grad=True, calcule algo a partir dele,
    chame .backward() no resultado e a derivada aparece no .grad do tensor.
    """,
)

# %%
say(
    "y = x², so dy/dx = 2x. At x = 2 the derivative is 4:",
    "y = x², então dy/dx = 2x. Em x = 2 a derivada vale 4:",
)
x = torch.tensor(2.0, requires_grad=True)
y = x**2
print("x =", x.item(), "| y =", y.item(), "| y.grad_fn =", type(y.grad_fn).__name__)
y.backward()
print("x.grad =", x.grad.item())
assert y.item() == 4.0
assert x.grad.item() == 4.0  # 2 * x at x = 2

# %%
say(
    """
    While computing, PyTorch records each operation (y.grad_fn above). backward() walks that
    record from the result back to the inputs. A tensor created without requires_grad is a
    constant: it gets no gradient.
    """,
    """
    Durante o cálculo, o PyTorch registra cada operação (o y.grad_fn acima). O backward() percorre
    esse registro do resultado de volta até as entradas. Um tensor criado sem requires_grad é uma
    constante: não recebe gradiente.
    """,
)
w = torch.tensor(3.0, requires_grad=True)
c = torch.tensor(5.0)  # a constant
(w * c).backward()
print("d(w*c)/dw =", w.grad.item(), "| c.grad =", c.grad)
assert w.grad.item() == 5.0 and c.grad is None

# %%
say(
    """
    The chain rule: for z = y² with y = 3x + 1, dz/dx = dz/dy * dy/dx = 2y * 3. At x = 2,
    y = 7 and dz/dx = 42. Autograd applies the chain rule step by step through the record.
    """,
    """
    A regra da cadeia: para z = y² com y = 3x + 1, dz/dx = dz/dy * dy/dx = 2y * 3. Em x = 2,
    y = 7 e dz/dx = 42. O autograd aplica a regra da cadeia passo a passo ao longo do registro.
    """,
)
x = torch.tensor(2.0, requires_grad=True)
y = 3 * x + 1
z = y**2
z.backward()
print("y =", y.item(), "| z =", z.item(), "| dz/dx =", x.grad.item())
assert z.item() == 49.0
assert x.grad.item() == 2 * 7 * 3 == 42

# %%
say(
    """
    With a vector, backward() needs a single number at the end, so we sum (a loss is one number
    too). The gradient of sum(x²) has one entry per element: 2x.
    """,
    """
    Com um vetor, o backward() precisa de um único número no final, por isso somamos (uma perda
    também é um número só). O gradiente de sum(x²) tem uma entrada por elemento: 2x.
    """,
)
v = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(v**2).sum().backward()
print("v =", v.tolist(), "| v.grad =", v.grad.tolist())
assert v.grad.tolist() == [2.0, 4.0, 6.0]

# %%
say(
    """
    When you only evaluate a model, wrap the code in torch.no_grad(): nothing is recorded, which
    saves memory and time, and the result cannot be differentiated.
    """,
    """
    Quando você só avalia um modelo, coloque o código dentro de torch.no_grad(): nada é registrado,
    o que economiza memória e tempo, e o resultado não pode ser derivado.
    """,
)
with torch.no_grad():
    plain = v * 2
print(t("inside no_grad:", "dentro do no_grad:"), "plain.requires_grad =", plain.requires_grad)
assert not plain.requires_grad and (v * 2).requires_grad
