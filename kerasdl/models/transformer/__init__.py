"""Transformers: the original encoder-decoder (``vaswani``), BERT, GPT-2, T5 and the
Vision Transformer, built from the shared encoder/decoder blocks of :mod:`.blocks` and
the small layers of :mod:`.layers` (keras.layers and keras.ops only, so every Keras
backend runs them)."""
