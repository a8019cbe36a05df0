import sys

from . import signals

signals.install()  # before the CLI imports torch: a signal during start-up is handled too
try:
    from .cli import main
except (KeyboardInterrupt, signals.Terminated) as exc:
    print(f"error: {signals.describe(exc)}", file=sys.stderr)
    sys.exit(signals.exit_code(exc))

sys.exit(main())
