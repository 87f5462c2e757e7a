from __future__ import annotations

import io

import matplotlib.image
import numpy as np
import pytest

from sse_dist.score.metrics import det_curve, eer, min_dcf
from sse_dist.score.plot import det_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def render(scores: np.ndarray, labels: np.ndarray) -> bytes:
    p_miss, p_fa = det_curve(scores, labels)
    return det_png(
        p_miss,
        p_fa,
        eer=eer(scores, labels),
        min_dcf=min_dcf(scores, labels, 0.01),
        p_target=0.01,
        n_targets=int(labels.sum()),
        n_nontargets=int(len(labels) - labels.sum()),
    )


@pytest.mark.parametrize(
    "separation",
    [1.5, 50.0, -3.0],  # ordinary, perfect (EER 0: the curve lies on the axes' edges), worse than chance
)
def test_det_png_is_a_readable_image(separation):
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.1).astype(int)
    scores = rng.standard_normal(2000) + separation * labels
    png = render(scores, labels)
    assert png.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(png))
    assert image.shape[0] > 100 and image.shape[1] > 100
    # Something was drawn: not a blank canvas.
    assert image[..., :3].std() > 0.05


def test_a_handful_of_trials_still_plots():
    assert render(np.array([0.1, 0.9, 0.5]), np.array([0, 1, 1])).startswith(PNG_SIGNATURE)
