# %%
"""Lesson 17: a network pretrained on ImageNet.

en: Fine-tuning a pretrained network: ImageNet weights, a new head, frozen batch norms, two rates
pt: Fine-tuning de uma rede pré-treinada: pesos do ImageNet, cabeça nova, batch norms congeladas, duas taxas
"""

import hashlib
from pathlib import Path

import torch
from torch import nn

import tocha
from tocha.lessons.text import say, t

say(
    """
    Fine-tuning means adapting a model trained before to a new task. The strongest start for
    photos is a network trained on ImageNet (1.2 million photos, 1,000 classes): its layers
    already turn pixels into edges, textures and parts of objects. torchvision publishes such
    weights, and torch keeps a downloaded file in its cache, $TORCH_HOME/hub/checkpoints, named
    with the start of its SHA-256. tocha's mobilenet_v2 has torchvision's parameter names, so the
    file loads as it is: tocha.backbone finds it there (downloading it once where it is missing).
    """,
    """
    Fine-tuning é adaptar um modelo treinado antes a uma tarefa nova. O melhor ponto de partida
    para fotos é uma rede treinada no ImageNet (1,2 milhão de fotos, 1.000 classes): suas camadas
    já transformam pixels em bordas, texturas e partes de objetos. O torchvision publica esses
    pesos, e o torch guarda um arquivo baixado no seu cache, $TORCH_HOME/hub/checkpoints, com o
    começo do seu SHA-256 no nome. O mobilenet_v2 do tocha tem os nomes de parâmetros do
    torchvision, então o arquivo carrega como está: tocha.backbone o acha ali (baixando-o uma vez
    se faltar).
    """,
)
model = tocha.backbone("mobilenet_v2", "imagenet", log=lambda line: None)
path = Path(torch.hub.get_dir()) / "checkpoints" / "mobilenet_v2-b0353104.pth"
digest = hashlib.sha256(path.read_bytes()).hexdigest()
print(path.name, t("tensors:", "tensores:"), len(model.state_dict()), "sha256:", digest[:8])
assert digest.startswith("b0353104")  # the file is the one its name says
weights = torch.load(path, weights_only=True)  # plain tensors: weights_only runs no code
assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())

# %%
say(
    """
    A new task with 3 classes: keep the backbone (model.features) and replace the head, the
    last Linear, 1280 features -> 3 classes. The inputs must be normalised with ImageNet's mean
    and std, the numbers the weights were trained on, not your data's own.
    """,
    """
    Uma tarefa nova com 3 classes: mantenha a base (model.features) e troque a cabeça, o último
    Linear, 1280 atributos -> 3 classes. As entradas precisam ser normalizadas com a média e o
    desvio do ImageNet, os números com que os pesos foram treinados, não os dos seus dados.
    """,
)
model.classifier[1] = nn.Linear(1280, 3)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
torch.manual_seed(0)
images = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)  # stand-ins for 8 photos
x = (images.float() / 255 - mean) / std
features = nn.functional.adaptive_avg_pool2d(model.features(x), 1).flatten(1)
print(t("features per image:", "atributos por imagem:"), tuple(features.shape))
assert features.shape == (8, 1280)

# %%
say(
    """
    Phase 1: train the head alone. Freezing sets requires_grad False on the backbone, and its
    batch norms go to eval mode: in train mode they would keep updating their running mean and
    variance from your small batches even with no gradient, and drift away from ImageNet's.
    """,
    """
    Fase 1: treine só a cabeça. Congelar põe requires_grad False na base, e as batch norms dela
    vão para o modo eval: no modo train elas continuariam atualizando a média e a variância
    acumuladas com os seus lotes pequenos, mesmo sem gradiente, e se afastariam das do ImageNet.
    """,
)
for p in model.features.parameters():
    p.requires_grad = False
model.train()
model.features.eval()  # the frozen part's batch norms keep ImageNet's statistics
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(t("trainable parameters:", "parâmetros treináveis:"), trainable)
assert trainable == 1280 * 3 + 3
norm = model.features[0][1]  # the first batch norm
before = norm.running_mean.clone()
labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
optimizer = torch.optim.Adam(model.classifier.parameters(), lr=1e-3)
loss = nn.functional.cross_entropy(model(x), labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
unchanged = torch.equal(before, norm.running_mean)
print(t("batch norm statistics unchanged:", "estatísticas da batch norm inalteradas:"), unchanged)
assert torch.equal(before, norm.running_mean)

# %%
say(
    """
    Phase 2: unfreeze everything, with discriminative rates: the new head learns at the full
    rate, the backbone at a tenth of it, so the features move a little instead of being wrecked
    by the first large steps. One optimizer, two parameter groups.
    """,
    """
    Fase 2: descongele tudo, com taxas discriminativas: a cabeça nova aprende na taxa cheia, a
    base a um décimo dela, para que os atributos mudem um pouco em vez de serem destruídos pelos
    primeiros passos grandes. Um otimizador, dois grupos de parâmetros.
    """,
)
for p in model.features.parameters():
    p.requires_grad = True
head, backbone = model.classifier.parameters(), model.features.parameters()
optimizer = torch.optim.Adam([{"params": head, "lr": 1e-3}, {"params": backbone, "lr": 1e-4}])
print(t("rates per group:", "taxas por grupo:"), [group["lr"] for group in optimizer.param_groups])
assert [group["lr"] for group in optimizer.param_groups] == [1e-3, 1e-4]

# %%
say(
    """
    tocha does all of it with one flag: the weights from torch's cache (checked by the hash in
    their name), ImageNet's normalisation, the head alone for one epoch, then everything with
    the backbone at 0.1x, under a one-cycle schedule; --baselines linear_probe fits a logistic
    regression on the frozen features beside it, the honest yardstick:
    """,
    """
    O tocha faz tudo isso com uma opção: os pesos do cache do torch (conferidos pelo hash no
    nome), a normalização do ImageNet, só a cabeça por uma época, depois tudo com a base a 0,1x,
    com um agendamento one-cycle; --baselines linear_probe ajusta uma regressão logística sobre os
    atributos congelados ao lado, a régua honesta:
    """,
)
print("tocha train --data PHOTOS/ --model mobilenet_v2 --pretrained imagenet --image-size 128x128")
