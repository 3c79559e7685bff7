"""The layers of tocha's text models: each reads `(N, T)` int64 token ids, padded with 0 at the end,
and padding never changes an answer (a text gives the same output alone or in a batch of longer
ones; `tests/test_text.py` checks every family).

How each keeps padding out, with operations ONNX and `torch.export` take at any length (no packed
sequences, which neither exports):
- recurrent (`rnn`, `lstm`, `gru`): the forward direction reads left to right, so its output at a
  text's last token has seen that text alone; the backward direction reads each text reversed
  within its own length (`reversed_within`), so it too starts at the text's last token. The answer
  is read at each text's last token.
- `conv1d`: padding's embedding is zero and every layer's output is zeroed past each text's end, so
  a convolution sees exactly the zeros it would pad with anyway; then the maximum over the text.
- `transformer`: a key padding mask (no token attends to padding), then the mean over the text.
- `bag`: the mean of the text's token embeddings.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tocha.models.layers import head_layers

PAD_ID = 0  # `data.text.PAD_ID`: padding is id 0, at the end of each text


def lengths_of(ids: torch.Tensor) -> torch.Tensor:
    """Each text's length: its tokens before the padding (at least 1, so an empty text reads its
    first, padding, position)."""
    return (ids != PAD_ID).sum(1).clamp(min=1)


def valid_mask(ids: torch.Tensor) -> torch.Tensor:
    """(N, T) True at each text's tokens (the first position always, as `lengths_of` counts it)."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    return positions[None, :] < lengths_of(ids)[:, None]


def reversed_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N, T, F) with each row's first `length` positions reversed, the padding left where it is
    (its own inverse)."""
    positions = torch.arange(x.shape[1], device=x.device)[None, :]
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    return x.gather(1, index[:, :, None].expand_as(x))


def at_last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N, F): each row's features at its last token."""
    index = (lengths - 1)[:, None, None].expand(-1, 1, x.shape[2])
    return x.gather(1, index).squeeze(1)


class TextClassifier(nn.Module):
    """Token ids -> an encoder's (N, F) features -> dropout -> the head (a Linear). Beside table
    columns (`columns` C > 0, set by `beside_columns`): its inputs are (N, C + T) float32, the C table
    features and then the ids (`data.text_set.with_columns`), and the head reads both together."""

    def __init__(
        self, encoder: nn.Module, features: int, num_classes: int, dropout: float, log_softmax: bool
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.columns = 0
        self.head = nn.Sequential(*head_layers(features, num_classes, log_softmax))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.columns:
            return self.head(self.dropout(self.encoder(ids)))
        table, ids = ids[:, : self.columns], ids[:, self.columns :].long()
        return self.head(self.dropout(torch.cat([self.encoder(ids), table], dim=1)))

    def get_classifier(self) -> nn.Module:
        return [m for m in self.head if isinstance(m, nn.Linear)][-1]  # beside columns, a layer comes first


def beside_columns(model: nn.Module, columns: int) -> nn.Module:
    """A text classifier that also reads `columns` table features beside each text
    (`TextClassifier`): the text's F features and the columns go through Linear(F + columns, F) and
    ReLU before the head, so an answer can hang on the two together (a word's weight that depends
    on a column's value), which one Linear over both could not learn."""
    from tocha.errors import TochaError

    if not isinstance(model, TextClassifier):
        raise TochaError("a next-token model reads a corpus, not text beside table columns")
    features = model.head[0].in_features
    model.head = nn.Sequential(nn.Linear(features + columns, features), nn.ReLU(), *model.head)
    model.columns = columns
    return model


class TokenPredictor(nn.Module):
    """Token ids -> an encoder's outputs at every position (each having read only the tokens up to
    it) -> the head: (N, T, V) logits of each position's next token."""

    def __init__(self, encoder: nn.Module, features: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encoder.sequence(ids, causal=True)[0]))

    def get_classifier(self) -> nn.Module:
        return self.head


class Bag(nn.Module):
    """The mean of a text's token embeddings: word order is lost (the honest baseline)."""

    def __init__(self, vocab_size: int, embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        total = self.embedding(ids).sum(1)  # padding's embedding is zero
        return total / lengths_of(ids)[:, None].to(total.dtype)


class Recurrent(nn.Module):
    """An embedding, then `num_layers` of nn.RNN / nn.LSTM / nn.GRU; read at each text's last token
    (both directions' where `bidirectional`: see the module's docstring)."""

    def __init__(
        self,
        kind: str,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.bidirectional = bidirectional
        between = dropout if num_layers > 1 else 0.0
        if not bidirectional:  # one module for the whole stack: PyTorch's fused layers
            self.layers = cell(embed_dim, hidden_size, num_layers, batch_first=True, dropout=between)
        else:  # a layer's input is both directions of the one below, each read within its length
            sizes = [embed_dim] + [2 * hidden_size] * (num_layers - 1)
            self.forwards = nn.ModuleList(cell(s, hidden_size, batch_first=True) for s in sizes)
            self.backwards = nn.ModuleList(cell(s, hidden_size, batch_first=True) for s in sizes)
            self.between = nn.Dropout(between)

    def sequence(self, ids: torch.Tensor, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T, H) outputs at every position (H doubled when bidirectional), and the lengths; the
        forward direction is causal as it is (`causal` is for the Transformer's sake)."""
        x, lengths = self.embedding(ids), lengths_of(ids)
        if not self.bidirectional:
            return self.layers(x)[0], lengths
        for i, (ahead, back) in enumerate(zip(self.forwards, self.backwards, strict=True)):
            if i:
                x = self.between(x)
            behind = reversed_within(back(reversed_within(x, lengths))[0], lengths)
            x = torch.cat([ahead(x)[0], behind], dim=2)
        return x, lengths

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x, lengths = self.sequence(ids)
        if not self.bidirectional:
            return at_last(x, lengths)
        half = x.shape[2] // 2  # the forward direction ends at the last token, the backward at the first
        return torch.cat([at_last(x[:, :, :half], lengths), x[:, 0, half:]], dim=1)


class Convolutional(nn.Module):
    """An embedding, then Conv1d + ReLU per width (same length, padding zeroed after each), then
    the maximum over each text."""

    def __init__(self, vocab_size: int, embed_dim: int, widths: list[int], kernel_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        sizes = [embed_dim, *widths]
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, kernel_size, padding=kernel_size // 2)
            for a, b in zip(sizes, sizes[1:], strict=False)
        )
        self.kernel_size = kernel_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = valid_mask(ids)[:, None, :]  # (N, 1, T)
        x = self.embedding(ids).transpose(1, 2)  # (N, E, T): channels first, as Conv1d takes them
        for conv in self.convs:
            x = torch.relu(conv(x))[:, :, : ids.shape[1]] * mask  # an even kernel adds one position
        return x.masked_fill(~mask, float("-inf")).amax(2)


def positional_encoding(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(T, D) sines and cosines of "Attention Is All You Need", computed for the length at hand."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * rate  # (T, ceil(D / 2))
    return torch.stack([angles.sin(), angles.cos()], dim=2).flatten(1)[:, :dim]


class Encoder(nn.Module):
    """A small Transformer encoder: scaled embeddings plus positions, `num_layers` of attention
    (padding masked out), then the mean over each text."""

    def __init__(
        self, vocab_size: int, embed_dim: int, num_heads: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        layer = nn.TransformerEncoderLayer(embed_dim, num_heads, 4 * embed_dim, dropout, batch_first=True)
        # enable_nested_tensor off: the same arithmetic in training and inference, and exportable.
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.scale = math.sqrt(embed_dim)

    def sequence(self, ids: torch.Tensor, causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T, D) outputs at every position (each attending only to those before it where
        `causal`), and the mask of each text's tokens."""
        mask = valid_mask(ids)
        positions = positional_encoding(ids.shape[1], self.embedding.embedding_dim, ids.device)
        x = self.embedding(ids) * self.scale + positions
        ahead = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device).triu(1)
        attend = ahead if causal else None  # True: may not attend (a later token), as the padding mask says
        return self.layers(x, mask=attend, src_key_padding_mask=~mask, is_causal=causal), mask

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x, mask = self.sequence(ids)
        weights = mask[:, :, None].to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1)


def given_lengths(model: nn.Module) -> nn.Module:
    """Your own text model whose `forward` takes `lengths`: each call given each text's length (its
    ids before the padding, `lengths_of`) beside the ids, by a forward pre-hook (the module and its
    weights' names stay as they are). Any other model is returned as it is."""
    import inspect

    takes = "lengths" in inspect.signature(model.forward).parameters
    if not takes or getattr(model, "_tocha_lengths", False):
        return model

    def with_lengths(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) == 1 and "lengths" not in kwargs:
            kwargs = {**kwargs, "lengths": lengths_of(args[0])}
        return args, kwargs

    model.register_forward_pre_hook(with_lengths, with_kwargs=True)
    model._tocha_lengths = True  # once, however often the module given in Python is built
    return model


def given_columns(model: nn.Module, columns: int) -> nn.Module:
    """Your own text model read beside `columns` table features: its `forward(ids, columns)` gets the
    ids (N, T) int64 and the columns (N, F) float32 apart, split from the (N, F + T) inputs by a
    forward pre-hook (registered before `given_lengths`', so lengths count the ids alone)."""
    import inspect

    if not columns or getattr(model, "_tocha_columns", False):
        return model
    if "columns" not in inspect.signature(model.forward).parameters:
        from tocha.errors import TochaError

        raise TochaError(
            f"your own model reads text beside {columns} table features: give its forward a `columns` "
            "parameter (it gets them (N, F) float32 beside the ids), or --drop those columns"
        )

    def split(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) == 1 and "columns" not in kwargs:
            x = args[0]
            return (x[:, columns:].long(),), {**kwargs, "columns": x[:, :columns]}
        return args, kwargs

    model.register_forward_pre_hook(split, with_kwargs=True)
    model._tocha_columns = True  # once, however often the module given in Python is built
    return model
