# %%
"""Lesson 19: padding and packing.

en: Padding and packing: batches of texts of different lengths, and answers padding must not change
pt: Padding e packing: lotes de textos de tamanhos diferentes, e respostas que o padding não pode mudar
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from tocha.lessons.text import say, t

say(
    """
    A batch is one tensor, but texts have different lengths: the short ones are padded with a
    padding id (0) up to the longest. pad_sequence does it, and each text's length is kept
    beside the batch, because the padding is not part of the text.
    """,
    """
    Um lote é um tensor só, mas os textos têm tamanhos diferentes: os curtos são completados com
    um id de padding (0) até o mais longo. O pad_sequence faz isso, e o tamanho de cada texto
    fica guardado ao lado do lote, porque o padding não faz parte do texto.
    """,
)
short, long = torch.tensor([3, 1, 4]), torch.tensor([2, 7, 1, 8, 2, 8])
batch = pad_sequence([short, long], batch_first=True)  # (2, 6), zeros after the short one
lengths = torch.tensor([len(short), len(long)])
print(t("batch:", "lote:"), batch.tolist(), t("lengths:", "tamanhos:"), lengths.tolist())
assert batch[0, 3:].eq(0).all()

# %%
say(
    """
    Run a GRU on the padded batch and read the last position: for the short text that is the
    state after three padding steps, not after its own last token, so its answer changed with
    the company it kept in the batch. Reading each text's output at its own last position gives
    back the answer it has alone (the GRU reads left to right: later padding cannot reach back).
    """,
    """
    Rode uma GRU no lote com padding e leia a última posição: para o texto curto, esse é o
    estado depois de três passos de padding, não depois do seu último token, então a resposta
    dele mudou com a companhia que teve no lote. Ler a saída de cada texto na sua própria última
    posição devolve a resposta que ele tem sozinho (a GRU lê da esquerda para a direita: o
    padding que vem depois não volta atrás).
    """,
)
torch.manual_seed(0)
embedding = nn.Embedding(10, 4, padding_idx=0)
gru = nn.GRU(4, 5, batch_first=True)
alone = gru(embedding(short).unsqueeze(0))[1][0, 0]  # the final state of the short text alone
outputs = gru(embedding(batch))[0]  # (2, 6, 5)
naive = outputs[0, -1]
at_own_end = outputs[torch.arange(2), lengths - 1][0]
print(t("last position == alone:", "última posição == sozinho:"), torch.allclose(naive, alone, atol=1e-6))
print(
    t("its own last position == alone:", "sua própria última posição == sozinho:"),
    torch.allclose(at_own_end, alone, atol=1e-6),
)
assert not torch.allclose(naive, alone, atol=1e-6)
assert torch.allclose(at_own_end, alone, atol=1e-6)

# %%
say(
    """
    Packing does the same inside the layer: pack_padded_sequence tells the GRU each length, it
    stops each text at its end, and the final state it returns is each text's own. That matters
    most for a bidirectional layer, whose backward direction starts at the end: on the padded
    batch it would start in the padding.
    """,
    """
    O packing faz o mesmo dentro da camada: o pack_padded_sequence diz à GRU cada tamanho, ela
    para cada texto no seu fim, e o estado final que devolve é o de cada texto. Isso importa mais
    numa camada bidirecional, cuja direção de trás para a frente começa no fim: no lote com
    padding ela começaria no padding.
    """,
)
packed = pack_padded_sequence(embedding(batch), lengths, batch_first=True, enforce_sorted=False)
final = gru(packed)[1][0]  # (2, 5)
assert torch.allclose(final[0], alone, atol=1e-6)
both = nn.GRU(4, 5, batch_first=True, bidirectional=True)
backward_alone = both(embedding(short).unsqueeze(0))[1][1, 0]
backward_padded = both(embedding(batch))[1][1, 0]
backward_packed = both(
    pack_padded_sequence(embedding(batch), lengths, batch_first=True, enforce_sorted=False)
)[1][1, 0]
print(t("packed final state == alone:", "estado final com packing == sozinho:"), True)
print(
    t("backward direction, padded == alone:", "direção de trás, com padding == sozinho:"),
    torch.allclose(backward_padded, backward_alone, atol=1e-6),
)
assert not torch.allclose(backward_padded, backward_alone, atol=1e-6)
assert torch.allclose(backward_packed, backward_alone, atol=1e-6)
