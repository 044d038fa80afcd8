import sys

from genoise.cli import main

sys.exit(main())
