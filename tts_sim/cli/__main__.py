import sys

from tts_sim.cli.app import main

sys.exit(main())
