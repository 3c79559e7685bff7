# %%
"""Lesson 12: from image to tensor.

en: From image to tensor: what ToTensor and Normalize do, in plain PyTorch
pt: Da imagem ao tensor: o que ToTensor e Normalize fazem, em PyTorch puro
"""

import numpy as np
import torch

from tocha.lessons.text import say, t

say(
    """
    An image file decodes to a uint8 array of shape (H, W, C): height, width, channels, values
    0 to 255. A network wants float32 of shape (C, H, W) with small values. torchvision's
    ToTensor and Normalize do that conversion; here it is, step by step, without torchvision.
    """,
    """
    Um arquivo de imagem vira um array uint8 de forma (H, W, C): altura, largura, canais, valores
    de 0 a 255. Uma rede quer float32 de forma (C, H, W) com valores pequenos. O ToTensor e o
    Normalize do torchvision fazem essa conversão; aqui está ela, passo a passo, sem torchvision.
    """,
)

# %%
rng = np.random.default_rng(0)
# A 32x48 colour image whose channels differ: red bright, green mid, blue dark.
channels = [rng.integers(low, low + 100, size=(32, 48), dtype=np.uint8) for low in (150, 80, 10)]
image = np.stack(channels, axis=-1)
print(
    t("image:", "imagem:"),
    image.shape,
    image.dtype,
    t("values", "valores"),
    image.min(),
    t("to", "a"),
    image.max(),
)

# %%
say(
    """
    ToTensor: move the channel axis to the front with permute(2, 0, 1), convert to float and
    divide by 255, so the values land in [0, 1]. Pixel (row i, column j) of channel c keeps its
    place: x[c, i, j] == image[i, j, c] / 255.
    """,
    """
    ToTensor: leve o eixo dos canais para a frente com permute(2, 0, 1), converta para float e
    divida por 255, assim os valores caem em [0, 1]. O pixel (linha i, coluna j) do canal c fica
    no mesmo lugar: x[c, i, j] == image[i, j, c] / 255.
    """,
)
x = torch.from_numpy(image).permute(2, 0, 1).float() / 255
print(
    "x:",
    tuple(x.shape),
    x.dtype,
    t("values {:.3f} to {:.3f}", "valores {:.3f} a {:.3f}").format(x.min().item(), x.max().item()),
)
assert x.shape == (3, 32, 48) and x.dtype == torch.float32
assert x.min() >= 0 and x.max() <= 1
assert abs(x[2, 5, 7].item() - image[5, 7, 2] / 255) < 1e-6  # the same pixel, its channel moved

# %%
say(
    """
    Normalize: subtract a mean and divide by a standard deviation, one pair per channel, so each
    channel is centred on 0 with spread about 1. Training goes better that way. The statistics
    usually come from the training set (for MNIST: mean 0.1307, std 0.3081); here we use this
    image's own, so each channel's mean must come out 0 and its std 1.
    """,
    """
    Normalize: subtraia uma média e divida por um desvio padrão, um par por canal, para que cada
    canal fique centrado em 0 com dispersão perto de 1. O treino funciona melhor assim. As
    estatísticas costumam vir do conjunto de treino (no MNIST: média 0.1307, desvio 0.3081); aqui
    usamos as da própria imagem, então a média de cada canal tem que dar 0 e o desvio, 1.
    """,
)
mean = x.mean(dim=(1, 2))  # one per channel
std = x.std(dim=(1, 2))
normalized = (x - mean[:, None, None]) / std[:, None, None]  # [:, None, None]: (3,) -> (3, 1, 1)
print(t("per-channel mean before:", "média por canal antes:  "), [round(v, 4) for v in mean.tolist()])
print(t("per-channel std before: ", "desvio por canal antes: "), [round(v, 4) for v in std.tolist()])
after_mean = normalized.mean(dim=(1, 2))
after_std = normalized.std(dim=(1, 2))
print(
    t("per-channel mean after: ", "média por canal depois: "),
    [round(abs(v), 4) for v in after_mean.tolist()],
)
print(t("per-channel std after:  ", "desvio por canal depois:"), [round(v, 4) for v in after_std.tolist()])
assert mean[0] > mean[1] > mean[2]  # red bright, blue dark, as made
assert torch.allclose(after_mean, torch.zeros(3), atol=1e-5)
assert torch.allclose(after_std, torch.ones(3), atol=1e-5)

# %%
say(
    """
    A common choice without statistics at hand: mean 0.5 and std 0.5, which maps [0, 1] onto
    [-1, 1]. Normalize does not clip; it is only a shift and a scale.
    """,
    """
    Uma escolha comum quando não se tem as estatísticas: média 0.5 e desvio 0.5, o que leva
    [0, 1] para [-1, 1]. O Normalize não corta valores; é só um deslocamento e uma escala.
    """,
)
edges = (torch.tensor([0.0, 1.0]) - 0.5) / 0.5
print("(0 - 0.5) / 0.5 =", edges[0].item(), "| (1 - 0.5) / 0.5 =", edges[1].item())
assert edges.tolist() == [-1.0, 1.0]
