"""Text made by a known rule, for tests and the guide's examples (tests/test_text_guide.py)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

NOUNS = ("food", "service", "film", "room", "staff", "music", "plot", "coffee", "view", "price")
GOOD = ("good", "great", "lovely", "excellent", "fine", "pleasant")
BAD = ("bad", "awful", "boring", "poor", "terrible", "dull")
OPENINGS = ("", "", "honestly ", "i think ", "overall ", "to be fair ")


def reviews(path: Path, n: int = 2000, seed: int = 0) -> Path:
    """`review,label`: "the food was not good" is negative, "the staff was not bad" positive. A bag
    of words sees "not" and "good" in both kinds of review: only their order tells them apart."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        good, negated = rng.random() < 0.5, rng.random() < 0.5
        adjective = rng.choice(GOOD if good else BAD)
        review = f"{rng.choice(OPENINGS)}the {rng.choice(NOUNS)} was {'not ' if negated else ''}{adjective}"
        rows.append((review, "positive" if good != negated else "negative"))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "label"])
        writer.writerows(rows)
    return path


def order_texts(path: Path, n: int = 600, seed: int = 0) -> Path:
    """Texts of a, b, c with one x and one y: the label says which comes first. Every text of a
    label has the same tokens as some text of the other, so only their order tells them apart."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chars = [rng.choice("abc") for _ in range(rng.randint(6, 14))]
        i, j = sorted(rng.sample(range(len(chars) + 2), 2))
        chars.insert(i, "x")
        chars.insert(j, "y")
        if rng.random() < 0.5:
            chars = [{"x": "y", "y": "x"}.get(c, c) for c in chars]
        text = "".join(chars)
        rows.append((text, "xy" if text.index("x") < text.index("y") else "yx", len(rows)))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "id"])
        writer.writerows(rows)
    return path


def texts_beside_columns(path: Path, n: int = 600, seed: int = 0, rule: str = "xor") -> Path:
    """`id,review,price,shop,label`: a review of a few words beside a price and a shop. Under "xor"
    the label is "yes" where the review has "good" unless the shop is "b" (then the other way
    round): neither the text nor the columns alone tell it (each alone is a coin's odds), the two
    together do. Under "or", "yes" where the review has "good" or the price is over 70."""
    rng = random.Random(seed)
    words = ("good", "bad", "fine", "great", "poor", "nice", "awful", "okay")
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "price", "shop", "label"])
        for i in range(n):
            review = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
            price, shop = round(rng.uniform(0, 100), 1), rng.choice("ab")
            good = "good" in review.split()
            yes = good != (shop == "b") if rule == "xor" else good or price > 70
            writer.writerow([i, review, price, shop, "yes" if yes else "no"])
    return path
