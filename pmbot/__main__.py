import sys

from pmbot.entry import main

sys.exit(main())
