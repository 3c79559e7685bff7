# %%
"""Lesson 20: generating text.

en: Generating text: a character model trained to predict the next one, sampled with a temperature
pt: Gerando texto: um modelo de caracteres treinado para prever o próximo, amostrado com uma temperatura
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A next-token model learns, at every position of a text, which token comes next: the inputs
    are the text and the targets the same text one step on. The loss is the cross-entropy of
    every position; its exponential, the perplexity, is how many tokens the model still hesitates
    between (1: certain; the vocabulary's size: a uniform guess).
    """,
    """
    Um modelo de próximo token aprende, em cada posição de um texto, qual token vem depois: as
    entradas são o texto e os alvos o mesmo texto um passo adiante. A perda é a entropia cruzada
    de cada posição; a exponencial dela, a perplexidade, é entre quantos tokens o modelo ainda
    hesita (1: certeza; o tamanho do vocabulário: um chute uniforme).
    """,
)
text = "hello world. " * 40
vocab = sorted(set(text))
ids = torch.tensor([vocab.index(c) for c in text])
inputs, targets = ids[:-1].view(1, -1), ids[1:].view(1, -1)


class CharModel(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 16)
        self.gru = nn.GRU(16, 64, batch_first=True)
        self.head = nn.Linear(64, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(self.embedding(x))[0])  # (N, T, vocabulary): every position


torch.manual_seed(0)
model = CharModel(len(vocab))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for _ in range(150):
    logits = model(inputs)
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
perplexity = loss.exp().item()
print(
    t("vocabulary size:", "tamanho do vocabulário:"),
    len(vocab),
    t("perplexity after training:", "perplexidade depois do treino:"),
    round(perplexity, 2),
)
assert perplexity < 1.5

# %%
say(
    """
    To write, give the model a prompt, take its answer at the last position, pick a token, append
    it and go again. Dividing the logits by a temperature before the softmax sets how bold the
    pick is: below 1 the likeliest token gains, above 1 the others do; 0 means always the
    likeliest. A seeded generator makes the same draws every time.
    """,
    """
    Para escrever, dê ao modelo um começo, pegue a resposta dele na última posição, escolha um
    token, acrescente e repita. Dividir os logits por uma temperatura antes do softmax regula a
    ousadia da escolha: abaixo de 1 o token mais provável ganha, acima de 1 os outros ganham; 0
    quer dizer sempre o mais provável. Um gerador com semente sorteia o mesmo toda vez.
    """,
)


@torch.no_grad()
def generate(prompt: str, length: int, temperature: float, seed: int = 0) -> str:
    generator = torch.Generator().manual_seed(seed)
    out = [vocab.index(c) for c in prompt]
    for _ in range(length):
        last = model(torch.tensor([out]))[0, -1]
        if temperature == 0:
            token = int(last.argmax())
        else:
            token = int(torch.multinomial(torch.softmax(last / temperature, 0), 1, generator=generator))
        out.append(token)
    return "".join(vocab[i] for i in out)


greedy = generate("hel", 14, temperature=0)
print(t("temperature 0:", "temperatura 0:"), repr(greedy))
assert greedy == "hello world. hell"
assert generate("w", 20, 1.0, seed=1) == generate("w", 20, 1.0, seed=1)  # seeded: the same text
last = model(torch.tensor([[vocab.index(c) for c in "hello w"]]))[0, -1]
sharp, flat = (torch.softmax(last / temperature, 0).max().item() for temperature in (0.5, 2.0))
print(
    t(
        "top token's probability at temperature 0.5 and 2:",
        "probabilidade do token mais provável com temperatura 0.5 e 2:",
    ),
    round(sharp, 3),
    round(flat, 3),
)
assert sharp > flat
