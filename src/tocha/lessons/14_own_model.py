# %%
"""Lesson 14: your own model, trained by tocha.

en: Your own model: from the notes' FashionMNISTModelV2 class to a tocha run
pt: Seu próprio modelo: da classe FashionMNISTModelV2 das notas a uma execução do tocha
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from tocha.lessons.text import say, t

say(
    """
    A model is a class: layers made in __init__, the computation written in forward. This is the
    notes' FashionMNISTModelV2, TinyVGG written by hand: two blocks of convolutions, then a
    Flatten and one Linear layer whose input size is hidden_units * 7 * 7.
    """,
    """
    Um modelo é uma classe: camadas criadas no __init__, a conta escrita no forward. Esta é a
    FashionMNISTModelV2 das notas, a TinyVGG escrita à mão: dois blocos de convoluções, depois um
    Flatten e uma camada Linear cuja entrada tem hidden_units * 7 * 7 valores.
    """,
)

MODEL_FILE = """
import torch
from torch import nn


class FashionMNISTModelV2(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(input_shape, hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features=hidden_units * 7 * 7, out_features=output_shape),
        )

    def forward(self, x: torch.Tensor):
        return self.classifier(self.block_2(self.block_1(x)))
"""

folder = Path(tempfile.mkdtemp(prefix="tocha-lesson-"))
(folder / "my_models.py").write_text(MODEL_FILE)
namespace: dict = {}
exec(MODEL_FILE, namespace)  # the same class, here, to look at it before tocha trains it
model = namespace["FashionMNISTModelV2"](input_shape=1, hidden_units=10, output_shape=10)
print(t("parameters:", "parâmetros:"), sum(p.numel() for p in model.parameters()))
print(
    t("output for a batch of 2 images:", "saída para um lote de 2 imagens:"),
    tuple(model(torch.zeros(2, 1, 28, 28)).shape),
)
assert isinstance(model, nn.Module) and model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)

# %%
say(
    """
    Written by hand, its training loop is the one of every lesson so far: forward, loss,
    zero_grad, backward, step, for each batch, then model.eval() to measure. tocha runs that
    loop for your class when you name its file and class, and gives it the constructor's
    arguments as --model-arg NAME=VALUE:

        tocha train --model my_models.py:FashionMNISTModelV2 --model-arg input_shape=1
                    --model-arg hidden_units=10 --model-arg output_shape=10 --data fashion-mnist

    Before any data is read, tocha builds the model and runs it once on the shape of a batch, so
    a wrong output size is one clear line, not a traceback from inside the loop. Here, on the
    bundled sample of Fashion-MNIST, for one epoch:
    """,
    """
    Escrito à mão, o laço de treino dela é o de todas as lições até aqui: forward, perda,
    zero_grad, backward, step, a cada lote, e depois model.eval() para medir. O tocha roda esse
    laço para a sua classe quando você dá o arquivo e a classe, e passa ao construtor os
    argumentos com --model-arg NOME=VALOR:

        tocha train --model my_models.py:FashionMNISTModelV2 --model-arg input_shape=1
                    --model-arg hidden_units=10 --model-arg output_shape=10 --data fashion-mnist

    Antes de ler qualquer dado, o tocha constrói o modelo e o roda uma vez no formato de um lote,
    então um tamanho de saída errado vira uma linha clara, não um traceback de dentro do laço.
    Aqui, na amostra do Fashion-MNIST que vem com o tocha, por uma época:
    """,
)
command = [sys.executable, "-m", "tocha", "train", "--model", "my_models.py:FashionMNISTModelV2",
           "--model-arg", "input_shape=1", "--model-arg", "hidden_units=10", "--model-arg", "output_shape=10",
           "--data", "fashion-mnist-sample", "--epochs", "1", "--out", "runs", "--name", "mine",
           "--no-progress"]  # fmt: skip
done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
print(done.stdout.strip())
assert done.returncode == 0, done.stderr
summary = json.loads((folder / "runs" / "mine" / "summary.json").read_text())
print(
    t("test accuracy after one epoch:", "acurácia de teste após uma época:"),
    f"{summary['final_test_accuracy']:.1%}",
)
assert summary["final_test_accuracy"] > 0.5

# %%
say(
    """
    The run records your file's path, its SHA-256 and the arguments, and keeps a copy of the
    code it trained (model_source.py), so evaluate, predict, export and --resume rebuild the same
    model. Importing a file runs its code: tocha imports one only when you name it, or when the
    recorded file is still the same, byte for byte. The model's part of the run's config.yaml:
    """,
    """
    A execução guarda o caminho do seu arquivo, o SHA-256 dele e os argumentos, e uma cópia do
    código que treinou (model_source.py), para evaluate, predict, export e --resume montarem o
    mesmo modelo. Importar um arquivo roda o código dele: o tocha só importa um quando você o
    indica, ou quando o arquivo gravado continua o mesmo, byte a byte. A parte do modelo no
    config.yaml da execução:
    """,
)
config = (folder / "runs" / "mine" / "config.yaml").read_text()
model = config[config.index("\nmodel:") + 1 :].split("\ntrain:")[0]  # the model section, as written
shown = ("model:", "name", "args", "input_shape", "hidden_units", "output_shape", "file:", "file_sha256")
print("\n".join(line for line in model.splitlines() if line.strip().startswith(shown)))
assert (folder / "runs" / "mine" / "model_source.py").read_text() == MODEL_FILE

# %%
say(
    """
    A wrong size is caught before training, in one line:
    """,
    """
    Um tamanho errado é pego antes do treino, em uma linha:
    """,
)
wrong = [*command[:10], "--model-arg", "output_shape=5", *command[12:]]
refused = subprocess.run(wrong, cwd=folder, capture_output=True, text=True)
print(refused.stderr.strip())
assert refused.returncode == 2 and "returned Bx5" in refused.stderr
