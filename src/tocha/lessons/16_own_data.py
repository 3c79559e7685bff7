# %%
"""Lesson 16: your own data, trained by tocha.

en: Your own data: from a Dataset class to a tocha run
pt: Seus próprios dados: de uma classe Dataset a uma execução do tocha
"""

import gzip
import tempfile
import time
from importlib.resources import files

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tocha.lessons.text import say, t

say(
    """
    A dataset, for PyTorch, is two methods: __len__ says how many items there are, __getitem__(i)
    gives item i as (input, target). This one reads the Fashion-MNIST files the notes read (here
    the sample that comes with tocha: 6,000 training and 1,000 test images) once, and gives each
    image as the uint8 pixels the file holds, shaped (1, 28, 28), with its label.
    """,
    """
    Um dataset, para o PyTorch, são dois métodos: __len__ diz quantos itens existem, __getitem__(i)
    dá o item i como (entrada, alvo). Este lê uma vez os arquivos do Fashion-MNIST que as notas
    leem (aqui a amostra que vem com o tocha: 6.000 imagens de treino e 1.000 de teste) e dá cada
    imagem como os pixels uint8 que o arquivo guarda, no formato (1, 28, 28), com seu rótulo.
    """,
)

FOLDER = files("tocha.data") / "bundled" / "fashion-mnist-sample"


class FashionMNIST(Dataset):
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip

    def __init__(self, train=True):
        prefix = "train" if train else "t10k"
        with gzip.open(FOLDER / f"{prefix}-images-idx3-ubyte.gz") as f:
            self.images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(FOLDER / f"{prefix}-labels-idx1-ubyte.gz") as f:
            self.labels = np.frombuffer(f.read(), np.uint8, offset=8)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].copy()), int(self.labels[i])


train_set, test_set = FashionMNIST(train=True), FashionMNIST(train=False)
image, label = train_set[0]
print(t("items:", "itens:"), len(train_set), "+", len(test_set))
print(t("one item:", "um item:"), tuple(image.shape), image.dtype, t("label", "rótulo"), label)
assert len(train_set) == 6000 and image.shape == (1, 28, 28) and image.dtype == torch.uint8

# %%
say(
    """
    The notes train on it through a DataLoader: it calls __getitem__ once per image, stacks 64 of
    them into a batch, and the loop does the rest. A linear model, one epoch, timed:
    """,
    """
    As notas treinam nele por um DataLoader: ele chama __getitem__ uma vez por imagem, empilha 64
    delas num lote, e o laço faz o resto. Um modelo linear, uma época, com o tempo medido:
    """,
)


def linear_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


torch.manual_seed(0)
model = linear_model()
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss_fn = nn.CrossEntropyLoss()
started = time.perf_counter()
for images, labels in DataLoader(train_set, batch_size=64, shuffle=True):
    loss = loss_fn(model(images.float() / 255), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
loop_seconds = time.perf_counter() - started
model.eval()
with torch.no_grad():
    images = torch.stack([test_set[i][0] for i in range(len(test_set))]).float() / 255
    accuracy = (model(images).argmax(1) == torch.from_numpy(test_set.labels.astype(np.int64))).float().mean()
print(
    t("the loop:", "o laço:"),
    f"{loop_seconds:.2f} s,",
    t("test accuracy", "acurácia de teste"),
    f"{accuracy:.1%}",
)
assert accuracy > 0.5

# %%
say(
    """
    tocha takes the same two datasets as data=. It reads every item once, checks each as it
    reads it (a pair, one shape and dtype, no NaN), splits off a validation set, and trains from
    tensors already in memory: no __getitem__ per image per epoch. Its first line says what it
    received and what it did with it; uint8 pixels are image bytes, normalised as tocha's own
    datasets are (floats, as ToTensor gives them, would be passed to the model as they are).
    """,
    """
    O tocha recebe os mesmos dois datasets como data=. Ele lê cada item uma vez, confere cada um
    ao ler (um par, um formato e um dtype, nenhum NaN), separa um conjunto de validação e treina a
    partir de tensores já na memória: nenhum __getitem__ por imagem por época. A primeira linha
    diz o que recebeu e o que fez; pixels uint8 são bytes de imagem, normalizados como os datasets
    do próprio tocha (floats, como o ToTensor os dá, iriam para o modelo como estão).
    """,
)
import tocha  # noqa: E402 - after the plain PyTorch part, which needs nothing of tocha's
from tocha.errors import TochaError  # noqa: E402

lines = []
result = tocha.train(data=(train_set, test_set), model=linear_model, epochs=1, progress=False,
                     out_dir=tempfile.mkdtemp(prefix="tocha-lesson-"), log=lines.append)  # fmt: skip
print(next(line for line in lines if line.startswith("python:FashionMNIST")))
print(
    t("test accuracy", "acurácia de teste"),
    f"{result.final.accuracy:.1%}",
    t("on", "em"),
    result.config.data.name,
)
assert result.config.data.name == "python:FashionMNIST" and result.final.accuracy > 0.5

# %%
say(
    """
    An item that is not what the others are is one line, naming it, before anything is written:
    """,
    """
    Um item diferente dos outros vira uma linha, que o nomeia, antes de qualquer coisa ser gravada:
    """,
)


class Broken(FashionMNIST):
    def __getitem__(self, i):
        image, label = super().__getitem__(i)
        return (image[:, :20], label) if i == 7 else (image, label)


try:
    tocha.train(data=(Broken(), test_set), model=linear_model, epochs=1, progress=False, log=lambda _: None)
    raise AssertionError("the broken item went unnoticed")
except TochaError as e:
    print(e)
    assert "item 7" in str(e)
