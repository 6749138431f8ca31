"""KerasHub rows of the benchmark: Grad-CAM on a KerasHub ViT and a KerasHub ResNet against
their forward pass, side by side (``python -m bench --hub``; needs keras-hub).

Untrained models built from KerasHub's own classes (speed does not depend on the weights):
a ViT shaped like ViT-Ti/16 (224 px, 14x14 patches, 12 blocks of 192 channels, 3 heads),
whose blocks live inside KerasHub's encoder layer, so Grad-CAM at the last block's input
norm goes through the sub-layer interception (traced once: a retrace per call would show
here as a ratio of 10x and more); and a ResNet-18-shaped ResNet (224 px).
"""

from __future__ import annotations

import sys

from bench.timing import against_forward

TARGETS = {"KerasHub ViT-Ti/16 shape (224 px, 12 blocks)": 1.5, "KerasHub ResNet-18 shape (224 px)": 1.3}


def _models():
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    vit = keras_hub.models.ViTImageClassifier(
        backbone=keras_hub.models.ViTBackbone(image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=3,
                                              hidden_dim=192, mlp_dim=768),
        num_classes=10)
    resnet = keras_hub.models.ResNetImageClassifier(
        backbone=keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
            stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
            image_shape=(224, 224, 3)),
        num_classes=10)
    return dict(zip(TARGETS, (vit, resnet)))


def measure(rounds: int) -> list[dict]:
    from gradcam.engine.graph import default_layer
    from gradcam.zoo.own_models import checked_model

    rows = []
    for name, keras_model in _models().items():
        model = checked_model(keras_model, name, labels=[str(i) for i in range(10)], preprocessing="0..1")
        rows.append({"model": name, "layer": default_layer(model).name,
                     **against_forward(model, {"gradcam": "gradcam"}, rounds)})
    return rows


def report(rows: list[dict], out=sys.stdout) -> bool:
    met = True
    print("\nKerasHub: one image, median ms (Grad-CAM at the default layer)", file=out)
    for row in rows:
        ratio = row["gradcam_ms"] / row["forward_ms"]
        target = TARGETS[row["model"]]
        met &= ratio <= target
        print(f"  {row['model']}: forward {row['forward_ms']:.1f}, Grad-CAM {row['gradcam_ms']:.1f} "
              f"({ratio:.2f}x, target <= {target}x) at {row['layer']}", file=out)
    return met
