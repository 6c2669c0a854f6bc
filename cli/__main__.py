"""`python -m wavenet_cli ...`: the same app as the `wavenet` command (used by torchrun -m)."""

from wavenet_cli.main import main

main()
