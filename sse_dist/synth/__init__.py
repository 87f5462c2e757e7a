"""The embedded default corpus: multi-speaker speech from a source-filter synthesiser, with exact phone alignments.

``run(SynthConfig)`` writes Kaldi data dirs ``train/`` and ``test/`` (disjoint speakers; ``wav.scp``, ``utt2spk``,
``spk2utt``, ``spk2gender``, ``text``, ``phones.ctm``; ``test/trials``) and ``lexicon.txt``.
"""

from .corpus import make_trials, run

__all__ = ["make_trials", "run"]
