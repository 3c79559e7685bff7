# %%
"""Lesson 10: convolution shapes.

en: Conv2d output sizes, and TinyVGG's hidden_units * 7 * 7
pt: Tamanho da saída do Conv2d e o hidden_units * 7 * 7 da TinyVGG
"""

from collections import OrderedDict

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A convolution slides a kernel of size k over the image, s pixels at a time (the stride),
    after padding the border with p pixels. Along each side the output has
    floor((H + 2p - k) / s) + 1 positions. Let us check the formula against real layers.
    """,
    """
    Uma convolução desliza um kernel de tamanho k pela imagem, s pixels por vez (o stride),
    depois de preencher a borda com p pixels (o padding). Em cada lado a saída tem
    floor((H + 2p - k) / s) + 1 posições. Vamos conferir a fórmula com camadas de verdade.
    """,
)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


# %%
cases = [(28, 3, 1, 1), (28, 3, 1, 0), (28, 5, 2, 2), (32, 3, 2, 1), (7, 3, 2, 0)]
for size, k, s, p in cases:
    layer = nn.Conv2d(1, 4, kernel_size=k, stride=s, padding=p)
    real = layer(torch.zeros(1, 1, size, size)).shape[-1]
    predicted = conv_out(size, k, s, p)
    print(f"H={size:>2} k={k} s={s} p={p}: {t('formula', 'fórmula')} {predicted:>2}, Conv2d {real:>2}")
    assert real == predicted

# %%
say(
    """
    Two patterns to remember: kernel 3 with padding 1 and stride 1 keeps the size ("same"
    padding), and MaxPool2d(2) halves it, rounding down.
    """,
    """
    Dois padrões para guardar: kernel 3 com padding 1 e stride 1 mantém o tamanho (padding
    "same"), e o MaxPool2d(2) corta pela metade, arredondando para baixo.
    """,
)
pool = nn.MaxPool2d(2)
for size in (28, 14, 7):
    print(f"MaxPool2d(2): {size} -> {pool(torch.zeros(1, 1, size, size)).shape[-1]}")
    assert pool(torch.zeros(1, 1, size, size)).shape[-1] == size // 2

# %%
say(
    """
    TinyVGG on 28x28 images: two blocks of (Conv 3x3 pad 1, ReLU, Conv 3x3 pad 1, ReLU,
    MaxPool 2). The convolutions keep 28, the pools take 28 -> 14 -> 7. Flattened, the last
    block gives hidden_units * 7 * 7 numbers: that is the classifier's in_features.
    """,
    """
    TinyVGG com imagens de 28x28: dois blocos de (Conv 3x3 pad 1, ReLU, Conv 3x3 pad 1, ReLU,
    MaxPool 2). As convoluções mantêm 28, os poolings levam 28 -> 14 -> 7. Achatado, o último
    bloco dá hidden_units * 7 * 7 números: esse é o in_features do classificador.
    """,
)
hidden_units, num_classes = 10, 10


def block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


model = nn.Sequential(
    OrderedDict(
        block_1=block(1, hidden_units),
        block_2=block(hidden_units, hidden_units),
        flatten=nn.Flatten(),
        classifier=nn.Linear(hidden_units * 7 * 7, num_classes),
    )
)
x = torch.zeros(1, 1, 28, 28)
shapes = [tuple(x.shape)]
for name, layer in model.named_children():
    x = layer(x)
    print(f"{name:<10} {shapes[-1]} -> {tuple(x.shape)}")
    shapes.append(tuple(x.shape))
assert shapes[1] == (1, hidden_units, 14, 14)
assert shapes[2] == (1, hidden_units, 7, 7)
assert shapes[3] == (1, hidden_units * 7 * 7) == (1, 490)
assert shapes[4] == (1, num_classes)
