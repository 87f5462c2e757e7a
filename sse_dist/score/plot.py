"""DET curve plot on normal-deviate (probit) axes, rendered to PNG bytes with matplotlib's Agg canvas.

The figure is built without pyplot, so plotting neither needs a display nor touches matplotlib's global
backend or figure registry of the calling process.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.special import ndtri

_TICKS = (0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)
_TICK_GAP = 1 / 16  # least distance between tick labels, as a fraction of the axis
_FLOOR = 0.0001  # lowest rate on the axes (0.01%)
_CEILING_OF_FLOOR = 0.05  # even a handful of trials gets axes spanning 5% to 50%


def _axis_limits(n: int, eer: float) -> tuple[float, float]:
    # Below half the rate resolution of n trials there is nothing to see; a near-chance system needs the axes
    # to reach past 50% for its EER point.
    low = min(max(_FLOOR, 0.5 / n), _CEILING_OF_FLOOR)
    return low, 0.5 if eer < 0.4 else 0.95


def _probit(p: np.ndarray | float, low: float) -> np.ndarray:
    # Rates of 0 and 1 lie at infinity on these axes: zero rates are pinned to the low edge, where they show
    # what the system reaches; rates near 1 are beyond the axis anyway.
    return ndtri(np.clip(p, low, 1 - low))


def _ticks(low: float, high: float) -> list[float]:
    # The probit scale squeezes the low tail, where labels such as 0.1 and 0.2 would overlap: keep a tick only
    # if it is far enough from the previous one.
    gap = _TICK_GAP * (ndtri(high) - ndtri(low))
    kept: list[float] = []
    for t in _TICKS:
        if low <= t <= high and (not kept or ndtri(t) - ndtri(kept[-1]) >= gap):
            kept.append(t)
    return kept


def _percent_axis(set_lim, set_ticks, low: float, high: float) -> None:
    ticks = _ticks(low, high)
    set_lim(ndtri(low), ndtri(high))
    set_ticks(ndtri(np.array(ticks)), [f"{100 * t:g}" for t in ticks])


def det_png(
    p_miss: np.ndarray,
    p_fa: np.ndarray,
    *,
    eer: float,
    min_dcf: float,
    p_target: float,
    n_targets: int,
    n_nontargets: int,
    system: str = "",
) -> bytes:
    """The DET curve ``(p_fa, p_miss)`` with its EER point, as a PNG image."""
    fa_low, fa_high = _axis_limits(n_nontargets, eer)
    miss_low, miss_high = _axis_limits(n_targets, eer)
    fig = Figure(figsize=(5.5, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(_probit(p_fa, fa_low), _probit(p_miss, miss_low), lw=1.5, label="DET")
    diagonal = ndtri(np.array([max(fa_low, miss_low), min(fa_high, miss_high)]))
    ax.plot(diagonal, diagonal, ls=":", lw=0.8, color="grey")
    ax.plot(
        _probit(eer, fa_low),
        _probit(eer, miss_low),
        "o",
        color="C3",
        label=f"EER {100 * eer:.2f}%",
    )
    _percent_axis(ax.set_xlim, ax.set_xticks, fa_low, fa_high)
    _percent_axis(ax.set_ylim, ax.set_yticks, miss_low, miss_high)
    ax.set_xlabel("False-alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.set_title(
        f"{system + ':   ' if system else ''}EER {100 * eer:.2f}%   minDCF(p={p_target:g}) {min_dcf:.4f}"
    )
    ax.grid(True, lw=0.4, alpha=0.6)
    # Below the curve: a DET curve falls from top left to bottom right, so this corner stays clear.
    ax.legend(loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
