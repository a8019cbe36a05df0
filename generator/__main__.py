import sys

from .core import signals

signals.install()  # before the CLI imports torch: a signal during start-up is handled too
try:
    from .cli import main
    code = main()
except (KeyboardInterrupt, signals.Terminated) as exc:    # start-up, or a late second signal
    print(f"error: {signals.describe(exc)}", file=sys.stderr)
    sys.exit(signals.exit_code(exc))
sys.exit(code)
