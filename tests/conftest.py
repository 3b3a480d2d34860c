"""Session-wide test setup.

``tests`` is a package (``tests/__init__.py``), so pytest puts the repository root on
``sys.path`` and ``tests.contract_models`` imports the same way in the main process and
in every pytest-xdist worker. Importing it registers the test-only models before any test
module is collected, so ``kerasdl.list_models()`` at collection time includes them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tests never touch the network: a dataset that is not prepared fails at once.
os.environ["KERASDL_OFFLINE"] = "1"

from tests import contract_models  # noqa: E402,F401  (registers the test_* models)
