# %%
"""Lesson 18: embeddings and a recurrent network, step by step.

en: Text as numbers: token ids, embeddings, and an RNN's hidden state carried along the sequence
pt: Texto como números: ids de tokens, embeddings, e o estado oculto de uma RNN levado pela sequência
"""

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A network reads numbers, so text first becomes token ids: here every character is a token,
    and the vocabulary numbers the characters of the training text (0 is kept for padding).
    An nn.Embedding is a table with one row of learnable numbers per id: looking a row up is
    the same as multiplying a one-hot vector by the table, only cheaper.
    """,
    """
    Uma rede lê números, então o texto vira primeiro ids de tokens: aqui cada caractere é um
    token, e o vocabulário numera os caracteres do texto de treino (o 0 fica para o padding).
    Um nn.Embedding é uma tabela com uma linha de números treináveis por id: pegar uma linha é o
    mesmo que multiplicar um vetor one-hot pela tabela, só que mais barato.
    """,
)
text = "the cat sat"
vocab = ["<pad>"] + sorted(set(text))
ids = torch.tensor([vocab.index(c) for c in text])
print(t("vocabulary:", "vocabulário:"), vocab)
print("ids:", ids.tolist())
torch.manual_seed(0)
embedding = nn.Embedding(len(vocab), 4, padding_idx=0)
one_hot = nn.functional.one_hot(ids, len(vocab)).float()
assert torch.allclose(embedding(ids), one_hot @ embedding.weight)
print(t("embedded:", "com embedding:"), tuple(embedding(ids).shape))

# %%
say(
    """
    A recurrent network reads the sequence one step at a time and carries a hidden state h from
    each step to the next: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh). The same weights
    serve every step, so one network reads a text of any length, and h_t holds what it kept of
    everything up to t. Written as a loop, the steps give exactly what nn.RNN gives.
    """,
    """
    Uma rede recorrente lê a sequência um passo por vez e leva um estado oculto h de cada passo
    ao seguinte: h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh). Os mesmos pesos servem a todo
    passo, então uma rede lê um texto de qualquer tamanho, e h_t guarda o que ela reteve de tudo
    até t. Escritos como um laço, os passos dão exatamente o que o nn.RNN dá.
    """,
)
rnn = nn.RNN(4, 3, batch_first=True)
x = embedding(ids).unsqueeze(0)  # (1, T, 4): a batch of one text
outputs, h_n = rnn(x)
h = torch.zeros(3)
steps = []
for x_t in x[0]:
    h = torch.tanh(rnn.weight_ih_l0 @ x_t + rnn.bias_ih_l0 + rnn.weight_hh_l0 @ h + rnn.bias_hh_l0)
    steps.append(h)
by_hand = torch.stack(steps)
assert torch.allclose(by_hand, outputs[0], atol=1e-6)
assert torch.allclose(outputs[0, -1], h_n[0, 0])  # the last step's output is the final state
print(t("outputs:", "saídas:"), tuple(outputs.shape), t("final state:", "estado final:"), tuple(h_n.shape))
print(t("the loop gives nn.RNN's outputs:", "o laço dá as saídas do nn.RNN:"), True)

# %%
say(
    """
    The hidden state is the network's memory: change the first character and every later state
    changes, the last one included. A classifier reads that last state; the GRU and the LSTM are
    RNNs whose gates decide what to keep, so they remember over longer texts (tocha's rnn, gru
    and lstm models are these layers with an embedding before and a Linear after).
    """,
    """
    O estado oculto é a memória da rede: mude o primeiro caractere e todo estado seguinte muda,
    o último incluído. Um classificador lê esse último estado; a GRU e a LSTM são RNNs cujas
    portas decidem o que guardar, então lembram ao longo de textos maiores (os modelos rnn, gru
    e lstm do tocha são essas camadas com um embedding antes e um Linear depois).
    """,
)
other = ids.clone()
other[0] = vocab.index("s")  # "she cat sat"
changed = rnn(embedding(other).unsqueeze(0))[0][0]
differs = (changed - outputs[0]).abs().sum(1) > 1e-6
print(
    t("steps whose state changed:", "passos cujo estado mudou:"), int(differs.sum()), t("of", "de"), len(ids)
)
assert bool(differs.all())
gru = nn.GRU(4, 3, batch_first=True)
out, h_n = gru(x)
assert torch.allclose(out[0, -1], h_n[0, 0])
print(
    t("GRU parameters:", "parâmetros da GRU:"),
    sum(p.numel() for p in gru.parameters()),
    t("RNN parameters:", "parâmetros da RNN:"),
    sum(p.numel() for p in rnn.parameters()),
)
