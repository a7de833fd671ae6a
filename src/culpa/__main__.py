import signal


def _before_start(signum, frame):  # Ctrl-C while the command line is still loading
    import os

    os.write(2, b"interrupted before the command started: nothing was done\n")
    os._exit(130)


signal.signal(signal.SIGINT, _before_start)
from culpa.cli import main  # noqa: E402

signal.signal(signal.SIGINT, signal.default_int_handler)
main()
