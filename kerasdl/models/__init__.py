"""Model families. Each module below registers its builders when imported; the list is
explicit so that what is registered is visible here, not hidden in star-imports."""

from kerasdl.models.cnn import (  # noqa: F401
    alexnet,
    densenet,
    efficientnet,
    googlenet,
    highway,
    inception_resnet,
    lenet,
    mobilenet,
    resnet,
    seed_cnns,
    shufflenet,
    squeezenet,
    vgg,
    xception,
)
from kerasdl.models import mlp  # noqa: F401
from kerasdl.models.rnn import elmo, generation, seq2seq, sequence  # noqa: F401
from kerasdl.models.transformer import bert, gpt, t5, vaswani, vit  # noqa: F401
from kerasdl.models.generative import autoencoder, diffusion, gan, vae  # noqa: F401
from kerasdl.models.keras_applications import (  # noqa: F401
    KERAS_APPLICATIONS,
    load_keras_applications_weights,
)
