"""Transformer rows of the benchmark: Grad-CAM and attention rollout on a ViT against its
forward pass, side by side (``python -m bench --vit``).

Two sizes, untrained (speed does not depend on the weights): the tests' tiny ViT
(32 px, 4x4 patches, 2 blocks) and one shaped like ViT-Ti/16 (224 px, 14x14 patches,
12 blocks of 192 channels and 3 heads), where the pass itself, not the call overhead,
dominates.
"""

from __future__ import annotations

import sys

from bench.timing import against_forward

TARGET_RATIO = 1.3  # Grad-CAM / forward, as for CNNs
SHAPES = {
    "tiny ViT (32 px, 4x4 tokens, 2 blocks)": dict(input_size=(32, 32), patch=8, dim=32, blocks=2, heads=2),
    "ViT-Ti/16 shape (224 px, 14x14 tokens, 12 blocks)": dict(input_size=(224, 224), patch=16, dim=192, blocks=12,
                                                                heads=3),
}


def measure(rounds: int) -> list[dict]:
    import keras

    from gradcam.engine.model import Model
    from gradcam.zoo.vit import build_vit

    rows = []
    for name, shape in SHAPES.items():
        keras.utils.set_random_seed(0)
        model = Model(name=name, keras=build_vit(classes=10, **shape), input_size=shape["input_size"],
                      labels=[str(i) for i in range(10)], preprocessing="0..1")
        rows.append({"model": name, **against_forward(model, {
            "gradcam": "gradcam", "rollout": "attention-rollout", "gradient-rollout": "gradient-rollout"}, rounds)})
    return rows


def report(rows: list[dict], out=sys.stdout) -> bool:
    met = True
    print("\nTransformers: one image, median ms (Grad-CAM at the last block's input norm)", file=out)
    for row in rows:
        ratio = row["gradcam_ms"] / row["forward_ms"]
        met &= ratio <= TARGET_RATIO
        print(f"  {row['model']}: forward {row['forward_ms']:.1f}, Grad-CAM {row['gradcam_ms']:.1f} "
              f"({ratio:.2f}x, target <= {TARGET_RATIO}x), rollout {row['rollout_ms']:.1f} "
              f"({row['rollout_ms'] / row['forward_ms']:.2f}x), gradient-weighted rollout "
              f"{row['gradient-rollout_ms']:.1f} ({row['gradient-rollout_ms'] / row['forward_ms']:.2f}x)", file=out)
    return met
