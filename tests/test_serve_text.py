"""`tocha serve` of text runs, as real processes on 127.0.0.1: a classifier answers each line of a
text/plain body as `tocha predict` does, a next-token run streams what `tocha generate` writes, bad
requests get a 4xx, and the page's text box in a real headless browser."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_serve import CHROMIUM, Server, browser_or_skip
from text_data import order_texts

import tocha

httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e .[test]")


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 (a TrainResult)
    root = tmp_path_factory.mktemp("serve-text")
    data = order_texts(root / "order.csv")
    return tocha.train(
        data=str(data),
        text="text",
        target="label",
        drop=["id"],
        model="gru",
        epochs=5,
        lr=0.01,
        out_dir=str(root / "runs"),
        log=quiet,
        progress=False,
        threads=1,
    )


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 (a TrainResult)
    root = tmp_path_factory.mktemp("serve-writer")
    rng = random.Random(0)
    corpus = root / "cycle.txt"
    corpus.write_text(" ".join(rng.choice(["the cat sat.", "a dog ran."]) for _ in range(1200)))
    return tocha.train(
        data=str(corpus),
        task="next-token",
        context=32,
        model="gru",
        epochs=3,
        lr=0.01,
        out_dir=str(root / "runs"),
        log=quiet,
        progress=False,
        threads=1,
    )


@pytest.fixture(scope="module")
def served(classifier, writer):  # noqa: ANN201 (two Servers)
    both = Server(classifier.run_dir), Server(writer.run_dir)
    yield both
    for server in both:
        server.stop()


def test_a_text_classifier_answers_each_line_as_predict_does(served, classifier):
    server, _ = served
    card = httpx.get(f"{server.url}/model").json()
    assert card["input"].startswith("text (chars)") and card["generates"] is False
    lines = ["abxcay", "bcyaaxbb", "xy"]
    answers = httpx.post(
        f"{server.url}/predict",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "text/plain"},
        timeout=60,
    ).json()
    expected = tocha.load(classifier.run_dir).predict(lines)
    assert [a["text"] for a in answers] == lines and [a["path"] for a in answers] == [
        "line 1",
        "line 2",
        "line 3",
    ]
    for got, want in zip(answers, expected, strict=True):
        assert got["top"][0]["class"] == want[0]["class"]
        assert got["top"][0]["probability"] == pytest.approx(want[0]["probability"], rel=1e-5)
    bad = httpx.post(f"{server.url}/predict", content=b"caf\xe9", headers={"Content-Type": "text/plain"})
    assert bad.status_code == 400 and "not UTF-8 text" in bad.json()["error"]
    assert httpx.post(f"{server.url}/generate", json={"prompt": "x"}).status_code == 400
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_a_next_token_run_streams_what_tocha_generate_writes(served, writer):
    _, server = served
    assert httpx.get(f"{server.url}/model").json()["generates"] is True
    asked = {"prompt": "the c", "length": 40, "temperature": 0.8, "seed": 3}
    with httpx.stream("POST", f"{server.url}/generate", json=asked, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        parts = list(r.iter_text())
    expected = tocha.load(writer.run_dir).generate("the c", 40, temperature=0.8, seed=3)
    assert "".join(parts) == expected
    for body, said in (
        ({"length": 0}, "length must be"),
        ({"temperature": -1}, "temperature must be"),
        ([1, 2], "a JSON object"),
        ({"prompt": 3}, "prompt must be"),
    ):
        r = httpx.post(f"{server.url}/generate", json=body)
        assert r.status_code == 400 and said in r.json()["error"], r.text
    r = httpx.post(f"{server.url}/predict", content=b"the", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "POST /generate" in r.json()["error"]


def test_the_text_box_in_a_real_browser(served, classifier, writer, tmp_path):
    sync_playwright = browser_or_skip()
    classify, write = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(classify.url + "/")
        page.wait_for_selector("body[data-ready=yes]")
        assert page.locator("#draw-box").is_hidden() and page.locator("#text-box").is_visible()
        page.fill("#text", "ayxbcc")
        page.click("#send-text")
        page.wait_for_function("Number(document.querySelector('#bars').dataset.answered || 0) > 0")
        top = page.locator(".bar").first.get_attribute("data-class")
        assert top == tocha.load(classifier.run_dir).predict("ayxbcc")[0][0]["class"]
        page.screenshot(path=str(tmp_path / "text.png"))
        page.goto(write.url + "/")
        page.wait_for_selector("body[data-ready=yes]")
        assert page.locator("#send-text").inner_text() == "Write"
        page.fill("#text", "a d")
        page.click("#send-text")
        page.wait_for_selector("#written[data-done=yes]", timeout=60_000)
        written = page.locator("#written").inner_text()
        assert written == tocha.load(writer.run_dir).generate("a d", 200, temperature=0.8, seed=0)
        browser.close()
    assert failed == []
    assert Path(tmp_path / "text.png").stat().st_size > 5_000
