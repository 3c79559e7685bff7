# %%
"""Lesson 7: squeeze and unsqueeze.

en: squeeze and unsqueeze: adding and removing axes of size 1
pt: squeeze e unsqueeze: como pôr e tirar eixos de tamanho 1
"""

import torch

from tocha.lessons.text import say

say(
    """
    Layers expect inputs of a given number of axes: a batch of images is (N, C, H, W), even when
    N is 1. unsqueeze(d) adds an axis of size 1 at position d; squeeze() removes axes of size 1.
    The numbers stay the same; only the shape changes.
    """,
    """
    Camadas esperam entradas com um certo número de eixos: um lote de imagens é (N, C, H, W),
    mesmo quando N vale 1. O unsqueeze(d) acrescenta um eixo de tamanho 1 na posição d; o
    squeeze() tira eixos de tamanho 1. Os números continuam os mesmos; só a forma muda.
    """,
)

# %%
x = torch.tensor([5, 6, 1, 7])
row = x.unsqueeze(0)
column = x.unsqueeze(1)
print("x.shape =", tuple(x.shape))
print("x.unsqueeze(0).shape =", tuple(row.shape), "->", row.tolist())
print("x.unsqueeze(1).shape =", tuple(column.shape), "->", column.tolist())
assert x.shape == (4,)
assert row.shape == (1, 4) and column.shape == (4, 1)
assert row.flatten().tolist() == column.flatten().tolist() == [5, 6, 1, 7]

# %%
say(
    """
    squeeze() removes every axis of size 1; squeeze(d) only axis d, and only if its size is 1
    (otherwise it leaves the tensor alone).
    """,
    """
    O squeeze() tira todos os eixos de tamanho 1; o squeeze(d) só o eixo d, e só se o tamanho dele
    for 1 (senão deixa o tensor como está).
    """,
)
t = torch.zeros(1, 3, 1, 2)
print("t.shape =", tuple(t.shape))
print("t.squeeze().shape =", tuple(t.squeeze().shape))
print("t.squeeze(0).shape =", tuple(t.squeeze(0).shape), "| t.squeeze(1).shape =", tuple(t.squeeze(1).shape))
assert t.squeeze().shape == (3, 2)
assert t.squeeze(0).shape == (3, 1, 2)
assert t.squeeze(1).shape == (1, 3, 1, 2)  # axis 1 has size 3: nothing to remove
assert row.squeeze().shape == column.squeeze().shape == (4,)

# %%
say(
    """
    A typical use: one grayscale 28x28 image is (1, 28, 28) (channels, height, width). A model
    wants a batch, so unsqueeze(0) makes it (1, 1, 28, 28). The result shares memory with the
    original: no copy is made.
    """,
    """
    Um uso típico: uma imagem em tons de cinza de 28x28 é (1, 28, 28) (canais, altura, largura).
    O modelo quer um lote, então o unsqueeze(0) a transforma em (1, 1, 28, 28). O resultado
    compartilha a memória com o original: nada é copiado.
    """,
)
image = torch.rand(1, 28, 28)
batch = image.unsqueeze(0)
print("image.shape =", tuple(image.shape), "| image.unsqueeze(0).shape =", tuple(batch.shape))
assert batch.shape == (1, 1, 28, 28)
assert batch.data_ptr() == image.data_ptr()

# %%
say(
    """
    Why it matters: shapes (4, 1) and (4,) look alike but broadcast into (4, 4). Subtracting
    targets of shape (4,) from predictions of shape (4, 1) compares every prediction with every
    target, a silent bug in a loss. Make the shapes equal first, with squeeze or unsqueeze.
    """,
    """
    Por que isso importa: as formas (4, 1) e (4,) parecem iguais, mas o broadcasting as leva a
    (4, 4). Subtrair alvos de forma (4,) de previsões de forma (4, 1) compara cada previsão com
    cada alvo, um bug silencioso numa perda. Deixe as formas iguais antes, com squeeze ou unsqueeze.
    """,
)
predictions = column.float()
targets = x.float()
print("(predictions - targets).shape =", tuple((predictions - targets).shape))
print("(predictions.squeeze(1) - targets).shape =", tuple((predictions.squeeze(1) - targets).shape))
assert (predictions - targets).shape == (4, 4)
assert (predictions.squeeze(1) - targets).shape == (4,)
