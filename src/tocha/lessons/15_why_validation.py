# %%
"""Lesson 15: why a validation split.

en: Why a validation split: the score that chose the winner flatters it
pt: Por que um conjunto de validação: a nota que escolheu o vencedor o favorece
"""

import torch

from tocha.lessons.text import say, t

say(
    """
    Compare many models on the test set, keep the best, and report its test score: that number is
    too good. Each test score is the model's true accuracy plus luck (which test images happen to
    be easy for it); taking the maximum picks the luckiest model, and its luck comes along.

    Here are 40 models whose true accuracy is exactly 80% each. A model's answers on a set of n
    images are n coin flips that come up "right" with probability 0.8 (seeded, so the numbers are
    the same every time).
    """,
    """
    Compare muitos modelos no conjunto de teste, fique com o melhor e informe a nota de teste dele:
    esse número é bom demais. Cada nota de teste é a acurácia verdadeira do modelo mais sorte (quais
    imagens do teste calham de ser fáceis para ele); pegar o máximo escolhe o modelo mais sortudo, e
    a sorte vem junto.

    Aqui estão 40 modelos cuja acurácia verdadeira é exatamente 80% cada. As respostas de um modelo
    em um conjunto de n imagens são n lançamentos de moeda que dão "certo" com probabilidade 0,8
    (com semente, então os números são sempre os mesmos).
    """,
)
generator = torch.Generator().manual_seed(0)
MODELS, TRUE_ACCURACY, N = 40, 0.8, 200


def scores(n: int) -> torch.Tensor:
    """Each model's accuracy on a fresh set of `n` images."""
    right = torch.rand(MODELS, n, generator=generator) < TRUE_ACCURACY
    return right.float().mean(dim=1)


def trial() -> tuple[float, float, float, float]:
    """One comparison on three independent sets of images: the winner chosen on test (its test and
    fresh scores), and the winner chosen on validation (its test and fresh scores)."""
    val, test, fresh = scores(N), scores(N), scores(10_000)
    on_test, on_val = int(test.argmax()), int(val.argmax())
    return float(test[on_test]), float(fresh[on_test]), float(test[on_val]), float(fresh[on_val])


results = torch.tensor([trial() for _ in range(100)])  # 100 comparisons, each with new images
test_chosen_test, test_chosen_fresh, val_chosen_test, val_chosen_fresh = results.mean(dim=0).tolist()

# %%
say(
    "Chosen on the test set (100 comparisons, averaged), the winner's test score against fresh images:",
    "Escolhido no conjunto de teste (100 comparações, em média), a nota de teste do vencedor contra "
    "imagens novas:",
)
print(
    t(
        "chosen on test: test {:.1%}, fresh data {:.1%}",
        "escolhido no teste: teste {:.1%}, dados novos {:.1%}",
    ).format(test_chosen_test, test_chosen_fresh)
)
assert test_chosen_test > test_chosen_fresh + 0.03  # the reported number is several points too high

# %%
say(
    """
    Now choose on a validation set (carved from the training data, used for every choice) and
    score the winner on the test set once. The validation score is flattering (it chose), but the
    test score was not used for anything: it tells the truth, within its own noise.
    """,
    """
    Agora escolha num conjunto de validação (separado dos dados de treino, usado para toda escolha)
    e avalie o vencedor no teste uma única vez. A nota de validação é lisonjeira (foi ela que
    escolheu), mas a nota de teste não foi usada para nada: ela diz a verdade, dentro do próprio ruído.
    """,
)
print(
    t(
        "chosen on validation: test {:.1%}, fresh data {:.1%}",
        "escolhido na validação: teste {:.1%}, dados novos {:.1%}",
    ).format(val_chosen_test, val_chosen_fresh)
)
assert abs(val_chosen_test - val_chosen_fresh) < 0.01 and abs(val_chosen_test - TRUE_ACCURACY) < 0.01

# %%
say(
    """
    The more choices (models, learning rates, epochs) and the smaller the test set, the larger the
    flattery: with 200 test images one image is half a point. tocha makes every choice on its
    validation split (--val-fraction, 10% of the training data by default, stratified by class) and
    scores the test split once, on the weights it kept; compare ranks on validation and reports test.
    """,
    """
    Quanto mais escolhas (modelos, taxas de aprendizado, épocas) e menor o teste, maior o exagero:
    com 200 imagens de teste, uma imagem vale meio ponto. O tocha faz toda escolha no conjunto de
    validação (--val-fraction, 10% dos dados de treino por padrão, estratificado por classe) e avalia
    o teste uma vez, nos pesos que guardou; o compare ordena pela validação e informa o teste.
    """,
)
print(
    t(
        "{} models of true accuracy {:.0%}: reported {:.1%} when chosen on test, "
        "{:.1%} when chosen on validation",
        "{} modelos de acurácia verdadeira {:.0%}: informado {:.1%} se escolhido no teste, "
        "{:.1%} se na validação",
    ).format(MODELS, TRUE_ACCURACY, test_chosen_test, val_chosen_test)
)
