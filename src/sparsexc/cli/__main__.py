import sys

from sparsexc.cli import main

sys.exit(main())
