import sys

from kerasdl.cli import main

sys.exit(main())
