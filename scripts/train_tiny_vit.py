"""Train the tiny Vision Transformer on synthetic tag photos and save it as a .keras file.

    python scripts/train_tiny_vit.py [OUT.keras] [--photos-dir DIR]

The model (gradcam.zoo.vit: class token, learned position embedding, two blocks of
Keras MultiHeadAttention) learns whether a red tag sits on patch (row 1, column 2)
of its 4x4 patch grid; a blue square elsewhere is no tag. Upload the file on the
Explore page ("Upload a Keras model...") with a few of the photos written to
``--photos-dir``: the token layers are listed with their grid, and Grad-CAM at the
default layer and attention rollout both light the tag's patch. It trains in about
15 s on a laptop CPU. No ViT's ImageNet weights can be had offline; this one shows
how the dashboard treats a transformer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="tiny-vit.keras", help="where to save the model")
    parser.add_argument("--photos-dir", help="also write 4 tag photos and 4 without, as PNG")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import numpy as np
    from PIL import Image

    from gradcam.zoo.vit import tag_photos, train_tag_vit

    model = train_tag_vit(seed=args.seed)
    Path(args.out).resolve().parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    photos, labels = tag_photos(64, seed=99)
    accuracy = float(np.mean((model.predict(photos, verbose=0)[:, 0] > 0.5) == labels))
    print(f"saved {args.out}: accuracy on 64 new photos {accuracy:.0%}")
    if args.photos_dir:
        folder = Path(args.photos_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for kind, wanted in (("tag", 1), ("no-tag", 0)):
            for n, photo in enumerate(photos[labels == wanted][:4]):
                Image.fromarray((photo * 255).round().astype(np.uint8)).resize((128, 128), Image.NEAREST).save(
                    folder / f"{kind}-{n}.png")
        print(f"photos in {folder}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
