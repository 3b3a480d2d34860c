"""Model families. Each module below registers its builders when imported; the list is
explicit so that what is registered is visible here, not hidden in star-imports."""

from kerasdl.models.cnn import lenet, seed_cnns  # noqa: F401
