"""Render what TensorBoard shows of one run (sample grids, scalars, a layer's channel-norm histograms)
into one PNG, read with TensorBoard's own event reader: a stand-in for a screenshot where no browser runs.

    .venv/bin/python scripts/tensorboard_figure.py <run>/tensorboard docs/tensorboard_digits.png
"""

import io
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def render(logdir: str, out: str, max_images: int = 4) -> None:
    events = EventAccumulator(logdir, size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    events.Reload()
    images = events.Images("samples")
    picks = [images[int(i)] for i in np.linspace(0, len(images) - 1, min(max_images, len(images)))]
    fig = plt.figure(figsize=(3 * len(picks), 6.4))
    for i, img in enumerate(picks):
        ax = fig.add_subplot(2, len(picks), i + 1)
        ax.imshow(Image.open(io.BytesIO(img.encoded_image_string)), cmap="gray")
        ax.set_title(f"samples, step {img.step}", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(2, 2, 3)
    for tag in ("train/g_loss", "train/d_loss", "distill/output"):
        if tag in events.Tags()["scalars"]:
            s = events.Scalars(tag)
            ax.plot([e.step for e in s], [e.value for e in s], label=tag, lw=0.8)
    if "val/fid" in events.Tags()["scalars"]:
        twin = ax.twinx()
        s = events.Scalars("val/fid")
        twin.plot([e.step for e in s], [e.value for e in s], "k.-", label="val/fid")
        twin.set_ylabel("val/fid")
        twin.legend(loc="upper center", fontsize=8)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.set_title("scalars", fontsize=9)
    tags = sorted(t for t in events.Tags()["histograms"] if t.startswith("prune/channel_norm/"))
    ax = fig.add_subplot(2, 2, 4)
    if tags:
        for h in events.Histograms(tags[0]):
            v = h.histogram_value
            edges = np.array([v.min, *v.bucket_limit[:-1]])
            ax.step(edges, v.bucket, where="post", label=f"step {h.step}")
        ax.set_title(f"{tags[0]} (removed channels at 0)", fontsize=9)
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.94, top=0.95, bottom=0.08, hspace=0.25, wspace=0.3)
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    render(sys.argv[1], sys.argv[2])
