import sys

from gemkit.cli import main

sys.exit(main())
