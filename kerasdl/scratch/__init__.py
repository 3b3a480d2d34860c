"""The fundamentals written out in numpy, next to their formulas, each checked against
the Keras piece a learner uses afterwards (issue 20; notebooks 02-05).

Modules: ``neurons`` (activations, losses, a numpy MLP with its backward pass, gradient
checking), ``optimizers`` (update rules equal to ``keras.optimizers``),
``initializers`` and ``normalization`` (variance formulas and normalisation layers equal
to Keras'), ``regularization`` (DropConnect, magnitude pruning) and ``conv_arithmetic``
(output sizes, receptive fields and parameter counts of convolutions and pooling).
"""
