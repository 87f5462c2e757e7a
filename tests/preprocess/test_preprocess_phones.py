from pathlib import Path

import numpy as np
import pytest

from sse_dist.config import FeatureConfig, PhoneConfig
from sse_dist.phoneset import INDEX, NUM_PHONES, PHONES, normalise, to_index
from sse_dist.preprocess.phones import PhoneError, make_source
from sse_dist.preprocess.phones.base import Utterance


def _utt(meta, frames=50):
    return Utterance("k", meta, np.zeros((frames, 40), np.float32), np.ones(frames, bool), {})


def test_inventory_is_silence_plus_39_arpabet():
    assert NUM_PHONES == 40 and PHONES[0] == "SIL" and len(set(PHONES)) == 40


@pytest.mark.parametrize(
    ("symbol", "phone"),
    [("AH0", "AH"), ("ey1", "EY"), ("ax", "AH"), ("AXR", "ER"), ("dx", "T"), ("+NSN+", "SIL"), ("sp", "SIL")],
)
def test_normalise_folds_variants_and_is_total(symbol, phone):
    assert normalise(symbol) == phone
    assert to_index(symbol) == INDEX[phone]


def test_alignment_source_puts_phones_on_the_frame_grid():
    source = make_source(PhoneConfig(source="alignment"), FeatureConfig())
    meta = {"phones": [[0.0, 0.2, "SIL"], [0.2, 0.1, "AH0"], [0.3, 0.15, "T"]]}
    result = source.label(_utt(meta))
    labels = result.values
    assert result.how == "aligned"
    assert labels.dtype == np.uint8 and labels.shape == (50,)
    # Frame t is centred at 10 ms * t + 12.5 ms.
    assert labels[18] == INDEX["SIL"] and labels[19] == INDEX["AH"]
    assert labels[28] == INDEX["AH"] and labels[29] == INDEX["T"]
    assert labels[43] == INDEX["T"] and labels[44] == INDEX["SIL"]  # past the last interval: silence


def test_alignment_source_without_alignment_fails_clearly():
    with pytest.raises(PhoneError, match="no time alignment"):
        make_source(PhoneConfig(source="alignment"), FeatureConfig()).label(_utt({}, 10))


def test_every_pocketsphinx_phone_maps_into_the_inventory_without_loss():
    pocketsphinx = pytest.importorskip("pocketsphinx")
    model = Path(pocketsphinx.get_model_path()) / "en-us"
    lines = (model / "cmudict-en-us.dict").read_text().splitlines()
    phones = {p for line in lines for p in line.split()[1:]}
    noise = {line.split()[1] for line in (model / "en-us" / "noisedict").read_text().splitlines()}
    assert len(phones) == 39 and {normalise(p) for p in phones} == set(PHONES) - {"SIL"}
    assert all(normalise(p) == p for p in phones)
    assert {normalise(p) for p in noise} == {"SIL"}


def test_the_mapping_is_total_on_arbitrary_symbols():
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-<>[] ")
    for _ in range(2000):
        symbol = "".join(rng.choice(alphabet, size=rng.integers(0, 8)))
        assert 0 <= to_index(symbol) < NUM_PHONES
