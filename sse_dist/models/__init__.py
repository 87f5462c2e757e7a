"""The networks (``xvector.py``: the x-vector extractor, the decoder, the speaker and phone classifiers) and
the exported ``model.pt`` format (``export.py``), below the stages: ``train`` builds and exports them,
``embed`` and the ``neural`` phone source load them with torch alone (no DeepSpeed, no training code)."""
