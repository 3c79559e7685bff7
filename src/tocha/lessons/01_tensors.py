# %%
"""Lesson 1: tensors.

en: Tensors: creating them, shape, dtype, arithmetic and matrix products
pt: Tensores: como criar, forma, dtype, aritmética e produto de matrizes
"""

import torch

from tocha.lessons.text import say

say(
    """
    A tensor is PyTorch's array: numbers laid out in a grid, with a shape (how many along each
    axis) and a dtype (what kind of number). Everything a network reads, computes and learns is a tensor.
    """,
    """
    Um tensor é o array do PyTorch: números organizados numa grade, com uma forma (quantos em cada
    eixo) e um dtype (que tipo de número). Tudo o que uma rede lê, calcula e aprende é um tensor.
    """,
)

# %%
say(
    "Ways to make one: from a Python list, filled with zeros or with ones, or as a range of numbers.",
    "Jeitos de criar um: a partir de uma lista Python, cheio de zeros ou de uns, ou como uma sequência.",
)
a = torch.tensor([[1, 2, 3], [4, 5, 6]])
print("torch.tensor([[1, 2, 3], [4, 5, 6]]) ->", a.tolist(), "shape", tuple(a.shape))
print("torch.zeros(2, 3) ->", torch.zeros(2, 3).tolist())
print("torch.ones(3) ->", torch.ones(3).tolist())
print("torch.arange(0, 10, 2) ->", torch.arange(0, 10, 2).tolist())
assert a.shape == (2, 3) and a.ndim == 2 and a.numel() == 6
assert torch.arange(0, 10, 2).tolist() == [0, 2, 4, 6, 8]

# %%
say(
    """
    Random numbers are only random until you fix the seed: the same seed gives the same numbers,
    which is what makes an experiment repeatable.
    """,
    """
    Números aleatórios só são aleatórios até você fixar a semente: a mesma semente dá os mesmos
    números, e é isso que torna um experimento reproduzível.
    """,
)
torch.manual_seed(0)
first = torch.rand(2, 2)
torch.manual_seed(0)
again = torch.rand(2, 2)
print("torch.manual_seed(0); torch.rand(2, 2) ->", [[round(v, 4) for v in row] for row in first.tolist()])
assert torch.equal(first, again)
assert ((first >= 0) & (first < 1)).all()  # rand draws uniformly from [0, 1)

# %%
say(
    """
    The dtype follows the data: whole numbers give int64, decimals give float32. Mixing them
    promotes to float. Networks compute in floating point, so convert with .float() when needed.
    """,
    """
    O dtype acompanha os dados: números inteiros viram int64, decimais viram float32. Misturar os
    dois promove para float. Redes calculam em ponto flutuante, então converta com .float() quando preciso.
    """,
)
print("a.dtype =", a.dtype, "| torch.tensor([1.5]).dtype =", torch.tensor([1.5]).dtype)
print("(a + 0.5).dtype =", (a + 0.5).dtype, "| a.float().dtype =", a.float().dtype)
assert a.dtype == torch.int64 and torch.tensor([1.5]).dtype == torch.float32
assert (a + 0.5).dtype == torch.float32 and a.float().dtype == torch.float32

# %%
say(
    """
    Arithmetic is elementwise: + and * pair up the numbers in the same position. A single
    number is stretched over the whole tensor (broadcasting).
    """,
    """
    A aritmética é elemento a elemento: + e * combinam os números na mesma posição. Um número
    sozinho é espalhado pelo tensor inteiro (broadcasting).
    """,
)
x = torch.tensor([1.0, 2.0, 3.0])
y = torch.tensor([4.0, 5.0, 6.0])
print("x + y =", (x + y).tolist(), "| x * y =", (x * y).tolist(), "| x * 10 =", (x * 10).tolist())
assert (x + y).tolist() == [5.0, 7.0, 9.0]
assert (x * y).tolist() == [4.0, 10.0, 18.0]

# %%
say(
    """
    The matrix product @ (torch.matmul) is different: each output number is a row of the left
    matrix times a column of the right one, summed. (2, 3) @ (3, 2) gives (2, 2): the inner sizes
    must match. This is what a linear layer computes.
    """,
    """
    O produto de matrizes @ (torch.matmul) é outra coisa: cada número da saída é uma linha da
    matriz da esquerda vezes uma coluna da direita, somados. (2, 3) @ (3, 2) dá (2, 2): os tamanhos
    internos precisam bater. É isso que uma camada linear calcula.
    """,
)
m = a.float()
product = m @ m.T
print("a.shape", tuple(a.shape), "@ a.T.shape", tuple(a.T.shape), "->", tuple(product.shape))
print("a @ a.T =", product.tolist())
assert product.shape == (2, 2)
assert product[0, 1] == 1 * 4 + 2 * 5 + 3 * 6  # row 0 of a times row 1 of a

# %%
say(
    "The dot product of two vectors multiplies them elementwise and sums: 1*4 + 2*5 + 3*6.",
    "O produto escalar de dois vetores multiplica elemento a elemento e soma: 1*4 + 2*5 + 3*6.",
)
dot = torch.dot(torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]))
print("torch.dot([1, 2, 3], [4, 5, 6]) =", dot.item())
assert dot == 32
assert dot == (torch.tensor([1, 2, 3]) * torch.tensor([4, 5, 6])).sum()
