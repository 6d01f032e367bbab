"""Train a tiny linear model with plain Python and save it to /app/data.

Fits y = a*x + b by gradient descent on a fixed synthetic data set (seeded,
so every run gives the same model), prints a table of the results and
writes the model as JSON to /app/data/model.json: mount a host directory
there (`-v "$PWD/data:/app/data"`) to keep it.
"""

import json
import os
import random

from tabulate import tabulate
from tqdm import tqdm

SEED = int(os.environ.get("SEED", "1"))
EPOCHS = int(os.environ.get("EPOCHS", "200"))
OUT_DIR = os.environ.get("OUT_DIR", "/app/data")


def main():
    rng = random.Random(SEED)
    xs = [i / 10 for i in range(100)]
    ys = [3.0 * x + 2.0 + rng.gauss(0, 0.5) for x in xs]
    a, b, rate = 0.0, 0.0, 0.01
    for _ in tqdm(range(EPOCHS), desc="training", disable=None):
        grad_a = sum((a * x + b - y) * x for x, y in zip(xs, ys)) * 2 / len(xs)
        grad_b = sum((a * x + b - y) for x, y in zip(xs, ys)) * 2 / len(xs)
        a, b = a - rate * grad_a, b - rate * grad_b
    mse = sum((a * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    score = 1 - mse / (sum((y - sum(ys) / len(ys)) ** 2 for y in ys) / len(ys))
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "model.json")
    with open(path, "w") as f:
        json.dump({"a": a, "b": b, "mse": mse, "r2": score, "seed": SEED}, f, indent=2)
    print(tabulate([["a", f"{a:.4f}"], ["b", f"{b:.4f}"], ["mse", f"{mse:.4f}"], ["r2", f"{score:.4f}"]],
                   headers=["parameter", "value"]))
    print(f"model written to {path} (r2 score {score:.4f})")


if __name__ == "__main__":
    main()
