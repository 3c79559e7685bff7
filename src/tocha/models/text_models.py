"""The text models: `bag`, `rnn`, `lstm`, `gru`, `conv1d` and `transformer`. Each takes `(N, T)`
int64 token ids (a text run's inputs: `data.text`) and is built for the run's vocabulary
(`vocab_size`, given by the data as `in_shape` is); its layers are in `models.sequence_layers`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tocha.config_fields import at_least, in_range, positive_sizes
from tocha.models.registry import LOG_SOFTMAX, ModelOption, register_model

EMBED_DIM = ModelOption("the width of each token's embedding", check=at_least(1), metavar="N")
DROPOUT = ModelOption("dropout before the head (and between recurrent layers)", check=in_range(0.0, 1.0))
HIDDEN_SIZE = ModelOption("the recurrent layers' hidden state width", check=at_least(1), metavar="N")
NUM_LAYERS = ModelOption("stacked layers", check=at_least(1), metavar="N")
BIDIRECTIONAL = ModelOption("also read each text backwards (classification only)")
RECURRENT = {
    "embed_dim": EMBED_DIM,
    "hidden_size": HIDDEN_SIZE,
    "num_layers": NUM_LAYERS,
    "bidirectional": BIDIRECTIONAL,
    "dropout": DROPOUT,
    "log_softmax": LOG_SOFTMAX,
}


def classifier(encoder: Any, features: int, num_classes: int, dropout: float, log_softmax: bool) -> Any:
    from tocha.models.sequence_layers import TextClassifier

    return TextClassifier(encoder, features, num_classes, dropout, log_softmax)


@register_model(embed_dim=EMBED_DIM, dropout=DROPOUT, log_softmax=LOG_SOFTMAX)
def bag(
    in_shape: tuple[int, int, int],
    num_classes: int,
    vocab_size: int,
    embed_dim: int = 64,
    dropout: float = 0.0,
    *,
    log_softmax: bool = False,
) -> Any:
    """Bag of tokens: the mean of a text's token embeddings, then Linear (order-blind baseline)."""
    from tocha.models.sequence_layers import Bag

    return classifier(Bag(vocab_size, embed_dim), embed_dim, num_classes, dropout, log_softmax)


def recurrent(
    kind: str,
    vocab_size: int,
    num_classes: int,
    embed_dim: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    log_softmax: bool,
    per_token: bool,
) -> Any:
    from tocha.errors import TochaError
    from tocha.models.sequence_layers import Recurrent, TokenPredictor

    encoder = Recurrent(kind, vocab_size, embed_dim, hidden_size, num_layers, bidirectional, dropout)
    if per_token:
        if bidirectional:
            raise TochaError(
                f"{kind}: a next-token model reads left to right; --bidirectional would read the "
                "token it is asked for"
            )
        return TokenPredictor(encoder, hidden_size, num_classes, dropout)
    return classifier(encoder, hidden_size * (2 if bidirectional else 1), num_classes, dropout, log_softmax)


def recurrent_family(kind: str, doc: str) -> Callable[..., Any]:
    """The factory of `kind` (rnn, lstm, gru), registered under that name: the three differ only in
    the recurrent layer they stack."""

    def factory(
        in_shape: tuple[int, int, int],
        num_classes: int,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        *,
        log_softmax: bool = False,
        per_token: bool = False,
    ) -> Any:
        return recurrent(kind, vocab_size, num_classes, embed_dim, hidden_size, num_layers, bidirectional,
                         dropout, log_softmax, per_token)  # fmt: skip

    factory.__name__ = factory.__qualname__ = kind
    factory.__doc__ = doc
    return register_model(**RECURRENT)(factory)


rnn = recurrent_family("rnn", "Embedding, then nn.RNN (tanh), read at each text's last token, then Linear.")
lstm = recurrent_family("lstm", "Embedding, then nn.LSTM, read at each text's last token, then Linear.")
gru = recurrent_family(
    "gru", "Embedding, then nn.GRU, read at each text's last token, then Linear (the text default)."
)


@register_model(
    embed_dim=EMBED_DIM,
    widths=ModelOption("each Conv1d layer's channels", check=positive_sizes(), metavar="N,N"),
    kernel_size=ModelOption("each Conv1d's kernel, in tokens", check=at_least(1), metavar="N"),
    dropout=DROPOUT,
    log_softmax=LOG_SOFTMAX,
)
def conv1d(
    in_shape: tuple[int, int, int],
    num_classes: int,
    vocab_size: int,
    embed_dim: int = 64,
    widths: list[int] | tuple[int, ...] = (128, 128),
    kernel_size: int = 5,
    dropout: float = 0.0,
    *,
    log_softmax: bool = False,
) -> Any:
    """Embedding, then Conv1d + ReLU per width, the maximum over each text, then Linear."""
    from tocha.models.sequence_layers import Convolutional

    encoder = Convolutional(vocab_size, embed_dim, [int(w) for w in widths], kernel_size)
    return classifier(encoder, int(widths[-1]) if widths else embed_dim, num_classes, dropout, log_softmax)


@register_model(
    embed_dim=EMBED_DIM,
    num_heads=ModelOption("attention heads (embed_dim must divide by it)", check=at_least(1), metavar="N"),
    num_layers=NUM_LAYERS,
    dropout=DROPOUT,
    log_softmax=LOG_SOFTMAX,
)
def transformer(
    in_shape: tuple[int, int, int],
    num_classes: int,
    vocab_size: int,
    embed_dim: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
    dropout: float = 0.1,
    *,
    log_softmax: bool = False,
    per_token: bool = False,
) -> Any:
    """A small Transformer encoder (sinusoidal positions, padding masked), mean over the text, Linear."""
    from tocha.errors import TochaError
    from tocha.models.sequence_layers import Encoder

    if embed_dim % num_heads:
        raise TochaError(f"transformer: embed_dim {embed_dim} does not divide into {num_heads} heads")
    encoder = Encoder(vocab_size, embed_dim, num_heads, num_layers, dropout)
    if per_token:  # causal attention: each position sees the tokens up to it
        from tocha.models.sequence_layers import TokenPredictor

        return TokenPredictor(encoder, embed_dim, num_classes, dropout)
    return classifier(encoder, embed_dim, num_classes, dropout, log_softmax)
